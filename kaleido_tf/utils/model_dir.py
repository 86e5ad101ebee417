"""Files a training run leaves in its model_dir that other packages look for."""

# Written by `engines.Trainer` into its model_dir ({"task": ...}); `model_zoo.registry` recognises a Trainer's
# model_dir (and its checkpoints) by it.
TRAINER_MARKER = "kaleido_tf_trainer.json"
