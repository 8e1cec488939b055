"""ART tests run single-threaded: on the shared 2-core machine a second
OpenMP thread makes a tiny conv step ~50x slower (oversubscription)."""
import torch

torch.set_num_threads(1)
