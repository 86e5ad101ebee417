"""The applications behind scripts/run_*.sh: pretraining, retrieval and finetuning with the original flags."""
