"""Holder chains in words: `Cache.entries (dict, 10,000 items) <- class Cache <- module app`.

The native census (native/holders.cpp) finds, for a group of objects, the chain of objects from
their direct holder up to a root, each one referring to the one before; this names each step by
the reference it is (an attribute, a key, an index, a local variable) and gives the stack that
allocated it. A dict that is an owner's attribute dict (a module's, a class's, an instance's) is
not a step of its own: it is the `Owner.name` of the step below it.
"""

from __future__ import annotations

import types
from typing import Any

from memlens import _native

Step = tuple[str, int]  # (text, stack or -1)

UNREACHABLE = "reference cycle not collected (collector disabled or not yet run)"
UNKNOWN = "no root found (held from C code, or the time budget ran out)"
_KEY_CHARS = 40  # of a dict key's repr in a step


def describe(root: str, count: int, chain: list[Any]) -> list[Step]:
    """The steps of a chain (chain[0] one of the `count` objects held, then their holder, ...,
    the root last), nearest the objects first."""
    stacks = _native.object_stacks(chain)
    steps: list[Step] = []
    last = len(chain) - 1
    if last >= 1 and root != "unreachable" and _held_by_name(chain):
        # held straight in a module's, class's or object's attributes, or a frame's locals:
        # the objects' own reference is the first step
        more = f" and {count - 1:,} more" if count > 1 else ""
        owner = chain[2] if last >= 2 else None
        steps.append((f"{_reference(chain[0], chain[1], owner)}{more} ({_kind(chain[0])})", -1))
    for i in range(1, len(chain)):
        obj = chain[i]
        if _is_owner_dict(chain, i):
            continue
        if i == last and root in ("module", "class", "frame"):
            steps.extend(_root_steps(obj, stacks[i]))
        elif i == last:
            steps.append((_kind(obj), stacks[i]))
        else:
            owner = chain[i + 2] if i + 2 <= last else None
            steps.append((f"{_reference(obj, chain[i + 1], owner)} ({_kind(obj)})", stacks[i]))
    if root == "unreachable":
        steps.append((UNREACHABLE, -1))
    elif root == "unknown":
        steps.append((UNKNOWN, -1))
    return steps


def _held_by_name(chain: list[Any]) -> bool:
    """Whether chain[0] is a frame's local or an attribute of a module, class or object."""
    return isinstance(chain[1], types.FrameType) or _is_owner_dict(chain, 1)


def _is_owner_dict(chain: list[Any], i: int) -> bool:
    """Whether chain[i] is the attribute dict of chain[i + 1] (not a step of its own)."""
    return i + 1 < len(chain) and _is_attribute_dict(chain[i], chain[i + 1])


def _root_steps(root: Any, stack: int) -> list[Step]:
    if isinstance(root, types.ModuleType):
        return [(f"module {root.__name__}", stack)]
    if isinstance(root, type):
        return [(f"class {root.__qualname__}", stack), (f"module {root.__module__}", -1)]
    if isinstance(root, types.FrameType):
        code = root.f_code
        return [(f"frame {code.co_name} ({code.co_filename}:{root.f_lineno})", -1)]
    return [(_kind(root), stack)]


def _kind(obj: Any) -> str:
    """`dict, 10,000 items`, or the type's name."""
    name = type(obj).__name__
    if isinstance(obj, (dict, list, tuple, set, frozenset)):
        return f"{name}, {len(obj):,} items"
    return name


def _is_attribute_dict(obj: Any, owner: Any) -> bool:
    """Whether obj is owner's attribute dict (module, class or instance __dict__)."""
    if type(obj) is not dict:
        return False
    if isinstance(owner, type):
        import gc  # not at import: see objects.take

        return any(d is obj for d in gc.get_referents(owner.__dict__))
    if isinstance(owner, types.FrameType):
        return False
    try:
        return object.__getattribute__(owner, "__dict__") is obj
    except AttributeError:
        return False


def _owner_name(owner: Any) -> str:
    if isinstance(owner, types.ModuleType):
        return owner.__name__
    if isinstance(owner, type):
        return owner.__qualname__
    return type(owner).__name__


def _reference(obj: Any, parent: Any, owner: Any) -> str:
    """How parent refers to obj: `Owner.name`, `dict['key']`, `list[3]`, `local x in f()`."""
    if type(parent) is dict:
        key = next((k for k, v in parent.items() if v is obj), _MISSING)
        if key is _MISSING:
            return "key of a dict"
        if owner is not None and _is_attribute_dict(parent, owner):
            if isinstance(key, str) and key.isidentifier():
                return f"{_owner_name(owner)}.{key}"
            return f"{_owner_name(owner)}[{_short(key)}]"
        return f"dict[{_short(key)}]"
    if isinstance(parent, (list, tuple)):
        index = next((i for i, v in enumerate(parent) if v is obj), None)
        return f"{type(parent).__name__}[{index}]" if index is not None else type(parent).__name__
    if isinstance(parent, types.FrameType):
        name = next((k for k, v in parent.f_locals.items() if v is obj), None)
        where = parent.f_code.co_name
        return f"local {name} in {where}()" if name else f"in frame {where}()"
    name = _attribute_name(obj, parent)
    if name is not None:
        return f"{type(parent).__name__}.{name}"
    return f"referenced by {type(parent).__name__}"


def _attribute_name(obj: Any, parent: Any) -> str | None:
    """The name of parent's attribute (instance dict or slot) that is obj."""
    try:
        attributes = vars(parent)
    except TypeError:
        attributes = {}
    for name, value in attributes.items():
        if value is obj:
            return str(name)
    for kind in type(parent).__mro__:
        for name in getattr(kind, "__slots__", ()):
            if isinstance(name, str) and getattr(parent, name, None) is obj:
                return name
    return None


def _short(key: Any) -> str:
    text = repr(key)
    return text if len(text) <= _KEY_CHARS else text[: _KEY_CHARS - 1] + "…"


_MISSING = object()
