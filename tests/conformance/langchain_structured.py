"""langchain-anthropic structured output against ``CAPTURE_BASE_URL`` (recording only).

Usage: python langchain_structured.py [json_schema|function_calling]
"""

import os
import sys

from langchain_anthropic import ChatAnthropic
from pydantic import BaseModel


class City(BaseModel):
    city: str
    population: int
    rivers: list[str]


def main() -> None:
    method = sys.argv[1] if len(sys.argv) > 1 else "json_schema"
    llm = ChatAnthropic(
        model_name="claude-sonnet-4-5",
        base_url=os.environ["CAPTURE_BASE_URL"],
        api_key="sk-capture-dummy",
        max_retries=0,
        timeout=30,
        stop=None,
    )
    answer = llm.with_structured_output(City, method=method).invoke(
        "Describe Amsterdam: its population and its rivers."
    )
    print(answer)


if __name__ == "__main__":
    main()
