"""The example flow that ``prefect-storage demo`` stores, loads back in a fresh process and runs."""

from __future__ import annotations

from prefect_storage import Flow, Parameter, context, task


@task
def numbers(count: int) -> list[int]:
    return list(range(1, count + 1))


@task(max_retries=1, retry_delay=0)
def square_all(values: list[int]) -> list[int]:
    return [value * value for value in values]


@task
def report(squares: list[int]) -> str:
    message = f"sum of squares: {sum(squares)}"
    context["logger"].info(message)
    return message


with Flow("prefect-storage-demo") as flow:
    count = Parameter("count", default=4)
    report(square_all(numbers(count)))
