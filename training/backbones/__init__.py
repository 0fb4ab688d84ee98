"""Training backbones: pure modules that fine-tune and run segmentation networks.

``base`` (shared interface: ``TrainConfig``, ``TrainResult``, weights and checkpoint
files), ``cellpose`` (+ ``cellpose_net``) and ``sam`` (+ ``sam_model``).  Each backbone
module has ``fine_tune(images, masks, *, config, ...) -> TrainResult`` and
``predict(images, *, weights, ...) -> list[label image]``.  Nothing here imports Django,
and torch is imported only inside functions: import the submodule you need.
"""
