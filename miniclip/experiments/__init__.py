"""The CLIP paper's findings, replicated at toy scale: ``python -m miniclip.experiments NAME``.

Each experiment trains tiny models on the synthetic shapes (``data/synthetic.py``) over
several seeds and writes ``results.json`` and a figure with error bars:

* ``compare_objectives.py``  ``objectives``: zero-shot accuracy against images seen for the
                             paper's Figure 2 objectives and SigLIP; softmax against sigmoid
                             across batch sizes
* ``few_shot.py``            ``few-shot``: zero-shot CLIP against k-shot linear probes
* ``robustness.py``          ``robustness``: zero-shot CLIP, a supervised classifier and an
                             adapted CLIP on clean and shifted pictures
* ``prompts.py``             ``prompts``: bare class names, one template, ensembles

and what they share:

* ``objectives.py``  the objectives: model, loss and zero-shot scores of each
* ``data.py``        one seed's training pictures, captions in each form, test pictures
* ``training.py``    the one training recipe, and the cache of trained models
* ``context.py``     the scale (full or ``--quick``), the results folder, shared data
* ``figures.py``     error-bar plots
* ``cli.py``         the command line
"""
