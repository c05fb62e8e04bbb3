"""Process set-up: what a program arranges with the machine before and around its work.

* ``threads.py`` BLAS threads chosen from the free cores, set at run time
* ``blas.py``    the BLAS library, kernel and threads, and the measured float32 matmul peak
* ``memory.py``  keeping freed memory for reuse, so that temporary arrays don't page-fault
* ``files.py``   atomic file writes: a file appears complete or not at all
* ``program.py`` the error, exit-code and warning policy of the three programs
                 (``train``, ``evaluation``, ``grade``)

Everything here uses only the standard library (and NumPy), imports nothing of the numeric
stack, and so may be imported first by anything.
"""
from .blas import blas_description, matmul_peak_flops, model_flops_utilization
from .files import atomic_write
from .memory import reuse_freed_memory
from .threads import blas_threads, limit_blas_threads
