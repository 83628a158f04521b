"""How a model learns: fit one classifier, keep its best weights, search hyperparameters, cross-validate."""
