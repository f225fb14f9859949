"""The one reader of environment variables: django-environ's `Env`, held to three rules of Instabot's.

- An empty or blank variable counts as unset and gets its default (compose's `KEY=`, a platform's
  empty field); one without a default is required.
- A value is taken as written: never as a reference to another variable (django-environ reads `$NAME`
  as one), because a secret may start with `$`.
- A value that does not parse stops start-up with an error naming the variable. Booleans are
  true/false, yes/no, on/off or 1/0 (django-environ takes anything else as false); numbers are
  Python's own (django-environ drops letters from a float: "2.5s" would be 2.5).

Lists are comma-separated, their items stripped, empty items dropped.
"""

from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
_EXPECTED = {bool: "true or false", int: "an integer", float: "a number"}


class InstabotEnv(environ.Env):
    def get_value(
        self, var: str, cast: Any = None, default: Any = environ.Env.NOTSET, parse_default: bool = False
    ) -> Any:
        value = self.ENVIRON.get(var, "")
        if not value.strip():
            if default is self.NOTSET:
                raise ImproperlyConfigured(f"Set the {var} environment variable.")
            return default
        try:
            return self.parse_value(value, cast)
        except ValueError:
            raise ImproperlyConfigured(f"{var} must be {_EXPECTED.get(cast, 'valid')}, not {value!r}.") from None

    @classmethod
    def parse_value(cls, value: str, cast: Any) -> Any:
        if cast is bool:
            word = value.strip().lower()
            if word not in TRUE_WORDS | FALSE_WORDS:
                raise ValueError(value)
            return word in TRUE_WORDS
        if cast is float:
            return float(value)
        if cast is list:
            return [item.strip() for item in value.split(",") if item.strip()]
        return super().parse_value(value, cast)


env = InstabotEnv()
