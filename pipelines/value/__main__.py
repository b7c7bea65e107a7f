"""`python -m pipelines.value`: `pipelines.value.run`."""

from pipelines.value.run import main

main()
