"""Model aliases: set (checked for cycles and long chains in the same transaction), follow, history, rollback."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tunesmith.core.errors import ServeError
from tunesmith.store.db import Database
from tunesmith.store.repo.rows import NotFoundError, now
from tunesmith.store.tables import AliasChangeRow, AliasRow

MAX_ALIAS_HOPS = 4


class AliasError(ServeError):
    """An alias chain loops or is longer than MAX_ALIAS_HOPS."""

    code = "invalid_alias"


def get_alias(db: Database, name: str) -> AliasRow | None:
    """The alias ``name``, if set."""
    with db.session() as s:
        return s.get(AliasRow, name)


def list_aliases(db: Database) -> list[AliasRow]:
    """Every alias, by name."""
    with db.session() as s:
        return list(s.scalars(select(AliasRow).order_by(AliasRow.name)))


def alias_history(db: Database, name: str) -> list[AliasChangeRow]:
    """Every recorded change of alias ``name``, oldest first."""
    with db.session() as s:
        return list(s.scalars(select(AliasChangeRow).where(AliasChangeRow.name == name).order_by(AliasChangeRow.seq)))


def alias_stack(changes: list[tuple[str, str]]) -> list[str]:
    """Targets an alias can roll back through: replay ``(action, to_target)`` changes (deploy pushes,
    rollback pops)."""
    stack: list[str] = []
    for action, target in changes:
        if action == "rollback":
            if stack:
                stack.pop()
        elif not stack or stack[-1] != target:
            stack.append(target)
    return stack


def alias_chain(targets: dict[str, str], name: str) -> list[str]:
    """The names an alias chain visits from ``name`` (``name`` first, the non-alias it ends at last).

    Raises:
        AliasError: the chain comes back to a name it visited, or takes more than MAX_ALIAS_HOPS hops.
    """
    chain = [name]
    while chain[-1] in targets:
        nxt = targets[chain[-1]]
        if nxt in chain:
            raise AliasError(
                "alias cycle: " + " -> ".join([*chain[chain.index(nxt) :], nxt]),
                "point one of these aliases at a model or checkpoint instead",
                param="model",
            )
        if len(chain) > MAX_ALIAS_HOPS:
            raise AliasError(
                f"alias chain longer than {MAX_ALIAS_HOPS} hops: " + " -> ".join([*chain, nxt]),
                "point the alias at the model directly",
                param="model",
            )
        chain.append(nxt)
    return chain


def follow_alias(db: Database, name: str) -> list[str]:
    """:func:`alias_chain` of ``name`` over the stored aliases."""
    with db.session() as s:
        return alias_chain(_alias_targets(s), name)


def _alias_targets(s: Any) -> dict[str, str]:
    return {a.name: a.target for a in s.scalars(select(AliasRow))}


def _passes_through(graph: dict[str, str], start: str, name: str) -> bool:
    seen, current = set(), start
    while current in graph and current not in seen:
        if current == name:
            return True
        seen.add(current)
        current = graph[current]
    return False


def set_alias(db: Database, name: str, target: str, actor: str, action: str = "deploy") -> AliasChangeRow:
    """Point ``name`` at ``target`` and record who changed it from what.

    Raises:
        AliasError: the change would close an alias cycle or make a chain through ``name`` too long (the new
            graph is checked in the same transaction as the write).
    """
    with db.session() as s:
        graph = {**_alias_targets(s), name: target}
        for start in graph:
            if _passes_through(graph, start, name):  # other chains are not this change's business
                alias_chain(graph, start)
        row = s.get(AliasRow, name)
        previous = row.target if row else None
        if row is None:
            s.add(AliasRow(name=name, target=target, updated_at=now()))
        else:
            row.target, row.updated_at = target, now()
        change = AliasChangeRow(
            name=name, action=action, from_target=previous, to_target=target, actor=actor, created_at=now()
        )
        s.add(change)
    return change


def rollback_alias(db: Database, name: str, actor: str) -> AliasChangeRow:
    """Restore the target ``name`` had before its latest deploy.

    Raises:
        NotFoundError: no such alias.
        ServeError: the alias has no earlier target.
    """
    history = alias_history(db, name)
    if not history:
        raise NotFoundError(
            f"no alias named {name!r}", "create it: `tunesmith deploy MODEL --alias NAME`", param="alias"
        )
    stack = alias_stack([(c.action, c.to_target) for c in history])
    if len(stack) < 2:
        raise ServeError(
            f"alias {name!r} has no earlier target to roll back to (it points at {stack[-1]!r})"
            if stack
            else f"alias {name!r} has no history",
            "deploy another model first",
            param="alias",
        )
    return set_alias(db, name, stack[-2], actor, action="rollback")
