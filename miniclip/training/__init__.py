"""The pieces of a CLIP training run; ``miniclip/train.py`` is the program that puts them
together (``python -m miniclip.train``).

* ``loss.py``    the paper's symmetric contrastive loss and the clamp on its temperature
* ``siglip.py``  SigLIP's pairwise sigmoid loss, with its learned bias
* ``bag_of_words.py``, ``captioning.py``  the losses (and zero-shot scores) of the paper's
  Figure 2 baselines: predicting the caption's words, or the caption itself
* ``recipe.py``  the paper's recipe: weight-decay groups, Adam's β and ε per image tower
* ``state.py``   finite checks, and saving and resuming a run's state atomically
* ``plots.py``   the PNG figures of a run (loss and temperature, similarities, predictions)
* ``threads.py`` BLAS threads chosen from the free cores, set at run time

(Nothing is imported here, so that ``miniclip.training.loss`` can be imported without the
models that the recipe needs.)
"""
