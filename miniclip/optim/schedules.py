"""The learning-rate schedule: linear warm-up, then cosine decay (``WarmupCosine``)."""
import math


class WarmupCosine:
    """Learning-rate schedule: linear warm-up to the peak, then cosine decay to ``final_lr``.

    Calling ``schedule(step)`` (steps count from 0) sets ``lr`` of every parameter group
    for that step and returns the first group's. Each group's peak is the ``lr`` it had
    when the schedule was made, kept in the group as ``"initial_lr"`` (so it survives
    ``optimizer.state_dict()``). With peak η, ``W`` warm-up steps and ``T`` steps in all::

        step <  W:   lr = η · (step + 1) / W                         # reaches η at W - 1
        step >= W:   lr = final + (η - final) · (1 + cos(π · p)) / 2,  p = (step - W) / (T - W)

    and ``final_lr`` after ``T``. Warm-up keeps Adam's first steps small while its
    second-moment estimate ``v`` is still noisy; the cosine spends most steps at a high
    rate and anneals gently at the end. The paper states a 2,000-step warm-up and cosine
    decay; the warm-up's shape and the final rate are our choice (linear, 0).

    The schedule is a pure function of ``step``, so resuming needs only the step count.
    """

    def __init__(self, optimizer, warmup_steps, total_steps, final_lr=0.0):
        if not 0 <= warmup_steps <= total_steps:
            raise ValueError(f"WarmupCosine: need 0 <= warmup_steps <= total_steps, got "
                             f"warmup_steps={warmup_steps}, total_steps={total_steps}")
        self.optimizer = optimizer
        self.warmup_steps, self.total_steps, self.final_lr = warmup_steps, total_steps, final_lr
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])

    def lr_at(self, step, peak_lr):
        """The learning rate at ``step`` for a group whose peak rate is ``peak_lr``."""
        if step < self.warmup_steps:
            return peak_lr * (step + 1) / self.warmup_steps
        if step >= self.total_steps:
            return self.final_lr
        progress = (step - self.warmup_steps) / (self.total_steps - self.warmup_steps)
        return self.final_lr + (peak_lr - self.final_lr) * 0.5 * (1 + math.cos(math.pi * progress))

    def __call__(self, step):
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(step, group["initial_lr"])
        return self.optimizer.param_groups[0]["lr"]
