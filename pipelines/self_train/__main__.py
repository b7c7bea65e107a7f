"""`python -m pipelines.self_train`: `pipelines.self_train.run`."""

from pipelines.self_train.run import main

main()
