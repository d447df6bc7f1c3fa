"""A standard set of conversations templates are rendered with (parity tests, `template diff`)."""

from __future__ import annotations

from typing import Any

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}},
            "required": ["city"],
        },
    },
}

CONVERSATIONS: dict[str, dict[str, Any]] = {
    "user": {"messages": [{"role": "user", "content": "Hello, who are you?"}], "add_generation_prompt": True},
    "system_user": {
        "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a colour."}],
        "add_generation_prompt": True,
    },
    "multi_turn": {
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello! ✓"},
            {"role": "user", "content": "Say ça va in English."},
        ],
        "add_generation_prompt": True,
    },
    "no_generation_prompt": {
        "messages": [
            {"role": "system", "content": "Be kind."},
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4"},
        ],
        "add_generation_prompt": False,
    },
    "tools": {
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": '{"temp_c": 21}'},
        ],
        "tools": [WEATHER_TOOL],
        "add_generation_prompt": True,
    },
    "reasoning": {
        "messages": [
            {"role": "user", "content": "Think: 3*7?"},
            {"role": "assistant", "content": "21", "reasoning_content": "3 times 7 is 21."},
            {"role": "user", "content": "And 3*8?"},
        ],
        "add_generation_prompt": True,
    },
    "continue_final": {
        "messages": [
            {"role": "user", "content": "Write a haiku."},
            {"role": "assistant", "content": "Autumn moonlight"},
        ],
        "continue_final_message": True,
    },
}


def check_messages(value: Any, where: str) -> list[dict[str, Any]]:
    """A conversation read from a user's file: a JSON list of objects, each with a text `role`."""
    from selfhost.errors import UsageError

    if not isinstance(value, list):
        raise UsageError(f"{where}: must hold a JSON list of messages", 'e.g. [{"role": "user", "content": "hi"}]')
    for i, m in enumerate(value):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise UsageError(
                f"{where}: message {i + 1} is not an object with a 'role'", 'e.g. {"role": "user", "content": "hi"}'
            )
    return value


def check_tools(value: Any, where: str) -> list[dict[str, Any]]:
    from selfhost.errors import UsageError

    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise UsageError(f"{where}: must hold a JSON list of tool objects", "see OpenAI's `tools` format")
    return value
