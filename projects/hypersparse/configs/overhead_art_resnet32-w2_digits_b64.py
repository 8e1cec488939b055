# benchmark_hook_overhead.py at the paper's batch size (64) for ResNet-32-w2:
# 10 iterations per epoch; epoch 1 is ART (one step, its evaluation pass over
# 10 training batches at the epoch end), epoch 2 fine-tunes under the mask.
_base_ = './overhead_art_resnet32-w2_digits.py'

train_dataloader = dict(batch_size=64, dataset=dict(indices=640))
