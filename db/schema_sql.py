"""Render the DDL peewee would emit for a set of models, per dialect.

A developer tool for writing migrations: the SQL it prints is pasted into a
migration module and frozen there, so that old migrations never change when
the models do. ``python -m db.schema_sql sqlite|postgres Model ...``
"""

from __future__ import annotations

import sys

import peewee

from . import models


def create_statements(model_classes, dialect: str) -> list[str]:
    database = (
        peewee.SqliteDatabase(":memory:")
        if dialect == "sqlite"
        else peewee.PostgresqlDatabase("render_only")
    )
    statements = []
    with database.bind_ctx(model_classes, bind_refs=False, bind_backrefs=False):
        for model in model_classes:
            ctx = model._schema._create_table(safe=False)
            sql, params = ctx.query()
            assert not params, params
            statements.append(sql)
            for index in model._schema._create_indexes(safe=False):
                sql, params = index.query()
                statements.append(_inline(sql, params))
    return statements


def _inline(sql: str, params) -> str:
    for value in params:
        literal = "'" + str(value).replace("'", "''") + "'"
        sql = sql.replace("?", literal, 1) if "?" in sql else sql.replace("%s", literal, 1)
    return sql


def main(argv=None) -> None:
    argv = argv if argv is not None else sys.argv[1:]
    dialect, names = argv[0], argv[1:]
    chosen = [getattr(models, name) for name in names] if names else models.ALL_MODELS
    for statement in create_statements(chosen, dialect):
        print(statement + ";")


if __name__ == "__main__":
    main()
