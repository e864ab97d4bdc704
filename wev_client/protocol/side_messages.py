"""The messages of the protocol's side exchanges: questions and answers.

A plugin's question to the user (``Prompt``, in a resolve response) and
``wev --answer``: apart from ``messages`` so that a plain ``wev CMD`` call
never loads them. The same rules
hold: ``from_json`` validates what arrives and raises
ProtocolError, unknown fields are ignored, no secret appears in a repr.
"""

from __future__ import annotations

from wev_client.protocol import MAX_VARIABLES
from wev_client.protocol.errors import ProtocolError
from wev_client.protocol.messages import expect, optional

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping


class Prompt:
    """A question a plugin asks the user through the client (an MFA code).

    ``id`` is stable for one entry and question, so the answer sent back finds
    it; ``label`` is the entry's key (``[A, B]``), for messages. A prompt holds
    no secret (the answer does, and travels only in ``ResolveRequest.answers``).
    ``note`` says why it is asked again (the last answer was refused).
    ``waiting`` names where the question is being asked when it is not this
    client's to ask ("" when it is): the client then sends its request again
    and so waits on. ``sign_in``: the text says what to run to sign in, and
    no answer is wanted.
    """

    __slots__ = ("id", "label", "note", "secret", "sign_in", "text", "waiting")

    def __init__(
        self,
        id: str,
        label: str,
        text: str,
        secret: bool,
        *,
        note: str = "",
        waiting: str = "",
        sign_in: bool = False,
    ) -> None:
        self.id = id
        self.label = label
        self.text = text
        self.secret = secret
        self.note = note
        self.waiting = waiting
        self.sign_in = sign_in

    def __repr__(self) -> str:
        return (
            f"Prompt(id={self.id!r}, label={self.label!r}, text={self.text!r}, "
            f"secret={self.secret!r}, waiting={self.waiting!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Prompt):
            return NotImplemented
        return self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(self.id)

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "id": self.id,
            "label": self.label,
            "text": self.text,
            "secret": self.secret,
        }
        if self.note:
            body["note"] = self.note
        if self.waiting:
            body["waiting"] = self.waiting
        if self.sign_in:
            body["sign_in"] = True
        return body

    @classmethod
    def from_json(cls, data: object) -> Prompt:
        item = expect(data, dict, "a prompt")
        assert isinstance(item, dict)
        prompt_id = expect(item.get("id"), str, "a prompt's id")
        text = expect(item.get("text"), str, "a prompt's text")
        label = optional(item, "label", str, "")
        secret = optional(item, "secret", bool, True)
        note = optional(item, "note", str, "")
        waiting = optional(item, "waiting", str, "")
        sign_in = optional(item, "sign_in", bool, False)
        assert isinstance(prompt_id, str) and isinstance(text, str)
        assert isinstance(label, str) and isinstance(secret, bool)
        assert isinstance(note, str) and isinstance(waiting, str) and isinstance(sign_in, bool)
        return cls(prompt_id, label, text, secret, note=note, waiting=waiting, sign_in=sign_in)


class AnswerRequest:
    """``wev --answer``: the user's answers to questions the daemon holds, by their ids.
    The answers are secrets: never printed."""

    __slots__ = ("answers",)

    def __init__(self, answers: Mapping[str, str]) -> None:
        self.answers = answers

    def __repr__(self) -> str:
        return f"AnswerRequest(answered={sorted(self.answers)!r})"

    def to_json(self) -> dict[str, object]:
        return {"answers": dict(self.answers)}

    @classmethod
    def from_json(cls, data: object) -> AnswerRequest:
        body = expect(data, dict, "the request")
        assert isinstance(body, dict)
        answers = expect(body.get("answers"), dict, "answers")
        assert isinstance(answers, dict)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in answers.items()):
            raise ProtocolError("answers must map question ids to strings")
        if len(answers) > MAX_VARIABLES:
            raise ProtocolError(f"a request may hold at most {MAX_VARIABLES} answers")
        return cls(answers)
