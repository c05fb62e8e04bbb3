"""The pieces of a CLIP training run; ``miniclip/train.py`` is the program that puts them
together (``python -m miniclip.train``).

* ``loss.py``    the paper's symmetric contrastive loss and the clamp on its temperature
* ``recipe.py``  the paper's recipe: weight-decay groups, Adam's β and ε per image tower
* ``state.py``   finite checks, and saving and resuming a run's state atomically
* ``plots.py``   the PNG figures of a run (loss and temperature, similarities, predictions)
* ``threads.py`` BLAS threads chosen from the free cores, set at run time
* ``locking.py`` locking a tower (LiT): no gradients, no graph, batch norms in eval mode
* ``finetune.py`` starting from weights: a trainable model, its tokenizer, gentler defaults

(Nothing is imported here, so that ``miniclip.training.loss`` can be imported without the
models that the recipe needs.)
"""
