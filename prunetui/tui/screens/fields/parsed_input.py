"""An Input that checks its text with a parse function and shows the reason when it fails."""

from collections.abc import Callable
from typing import Any

from textual.validation import ValidationResult, Validator

from prunetui.tui.screens.fields.in_order_input import InOrderInput


class _ParsesWith(Validator):
    def __init__(self, parse: Callable[[str], Any]) -> None:
        super().__init__()
        self.parse = parse

    def validate(self, value: str) -> ValidationResult:
        try:
            self.parse(value)
        except ValueError as error:
            return self.failure(str(error))
        return self.success()


class ParsedInput(InOrderInput):
    """`parsed()` returns the parse function's value or raises its ValueError."""

    def __init__(self, parse: Callable[[str], Any], value: str = "", **kwargs) -> None:
        super().__init__(value=value, validators=[_ParsesWith(parse)], validate_on=["changed"], **kwargs)
        self.parse = parse

    def parsed(self) -> Any:
        return self.parse(self.value)
