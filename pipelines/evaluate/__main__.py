"""`python -m pipelines.evaluate`: `pipelines.evaluate.run`."""

from pipelines.evaluate.run import main

main()
