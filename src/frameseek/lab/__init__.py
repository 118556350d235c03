"""The training lab: training, distributed training, evaluation, caption and video datasets, losses and the
parts fitted once after training. It uses the library as a user would; the product never imports it."""
