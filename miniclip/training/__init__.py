"""A CLIP training run: its pieces, and the program ``python -m miniclip.train``.

* ``loss.py``     the paper's symmetric contrastive loss and the clamp on its temperature
* ``siglip.py``   SigLIP's pairwise sigmoid loss, with its learned bias
* ``bag_of_words.py``, ``captioning.py``  the losses (and zero-shot scores) of the paper's
  Figure 2 baselines: predicting the caption's words, or the caption itself
* ``recipe.py``   the paper's recipe: weight-decay groups, Adam's β and ε per image tower
* ``step.py``     the one training step: forward, loss, scaled backward, checks, update
* ``state.py``    finite checks, and saving and resuming a run's state atomically
* ``plots.py``    the PNG figures of a run (loss and temperature, similarities, predictions)
* ``config.py``   ``RunConfig``, a run's settings, resolved once from the command line
* ``run.py``      a run from start to end: data, model, the loop, checkpoints, metrics
* ``progress.py`` the progress bar or lines, and Ctrl-C stopping after a step
* ``resume.py``   the run folder's checks: never replaced by accident, resumed only alike
* ``report.py``   the end of a run: evaluation plots and the printed report
* ``locking.py``  locking a tower (LiT): no gradients, no graph, batch norms in eval mode
* ``finetune.py`` starting from weights: a trainable model, its tokenizer, gentler defaults
* ``cli.py``      the command line (``miniclip/train.py`` is its entry point)

(Nothing is imported here, so that ``miniclip.training.loss`` can be imported without the
models that the recipe needs.)
"""
