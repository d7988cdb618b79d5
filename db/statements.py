"""Statements whose text peewee composes once: writes per shape, hot reads per backend.

peewee composes every query anew from its tree of nodes. For the writes on the hot
paths (one row inserted, one row updated by its key: every ``save`` and ``create``)
composing costs about ten times what SQLite then takes to run the statement. The text
of such a statement depends only on its shape: the table, the backend, the columns
written, the conflict clause and the RETURNING columns; the values only fill its
parameters.

``ShapedInsert`` and ``ShapedUpdate`` (what ``BaseModel.insert`` / ``update`` return)
let peewee compose the first statement of each shape with a marker in place of every
value, keep the text between the markers, and for every later statement of that shape
emit the kept text and hand each value to peewee's own ``Context.value``, with the
field's converter, exactly as peewee's composition does. A value that is itself an
expression, a WITH clause, an upsert, a WHERE other than ``<key field> = <value>`` and
the like are composed by peewee in full, as before.

``Prepared`` is the same for a read on a hot path, written once with named parameters
(``p.name``) where its values go: peewee composes it once per backend, and each run fills
the parameters, converted as peewee converts the value a field is compared with.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import re

from peewee import (
    OP,
    ROW,
    SCOPE_NORMAL,
    Expression,
    Field,
    FieldAlias,
    ForeignKeyField,
    Insert,
    Model,
    ModelInsert,
    ModelSelect,
    ModelUpdate,
    Node,
    Update,
    Value,
    qualify_names,
)

_MARKER = re.compile("\x00([0-9]+)\x00")
_UNCACHEABLE = object()
_TEXTS: dict[tuple, object] = {}


class _Marker(Node):
    """Stands for the ``index``-th value while a shape's text is composed."""

    def __init__(self, index: int):
        super().__init__()
        self.index = index

    def __sql__(self, ctx):
        return ctx.literal(f"\x00{self.index}\x00")


def _backend(ctx):
    """The database class the context composes for (None: not bound to one)."""
    statement = ctx.state.conflict_statement
    owner = getattr(statement, "__self__", None)
    return None if owner is None else type(owner)


def _fresh(ctx) -> bool:
    """Composing a whole statement (not a part of another one)."""
    return ctx.state.scope == SCOPE_NORMAL and not ctx.state.subquery and not ctx.stack


def _compose_text(ctx, template, compose, count: int):
    """Compose ``template`` (values replaced by markers 0..count-1) in a new context;
    returns (pieces between the values, marker order) or ``_UNCACHEABLE`` when the
    statement carries parameters of its own or the markers do not come out once each."""
    new = ctx.as_new()
    compose(template, new)
    sql, params = new.query()
    if params:
        return _UNCACHEABLE
    parts = _MARKER.split(sql)
    pieces, order = parts[0::2], [int(i) for i in parts[1::2]]
    if sorted(order) != list(range(count)):
        return _UNCACHEABLE
    return pieces, order


def _plain(value, column) -> bool:
    """A value peewee hands to ``Context.value`` (not an expression composed in place)."""
    return not isinstance(value, Node) or (
        isinstance(value, Model) and isinstance(column, ForeignKeyField)
    )


def _conflict_key(on_conflict):
    if on_conflict is None:
        return None
    if on_conflict._update or on_conflict._preserve or on_conflict._where is not None:
        return _UNCACHEABLE  # DO UPDATE ... composes values of its own
    if on_conflict._conflict_where is not None:
        return _UNCACHEABLE
    return (on_conflict._action, on_conflict._conflict_target, on_conflict._conflict_constraint)


def _returning_key(returning):
    if not returning:
        return ()
    if not all(isinstance(column, Field) for column in returning):
        return _UNCACHEABLE
    return tuple(returning)


# Types a driver takes as they are: ``Context.value`` would only append such a value to the
# parameters (after the converter, and unless the context writes values as literals).
_PARAMETER_TYPES = frozenset(
    {str, int, float, bool, type(None), bytes, dt.datetime, dt.date, dt.time, decimal.Decimal}
)


class _Composed:
    """A value ``Update.__sql__`` turns into SQL itself (a field's own ``to_value``)."""

    __slots__ = ("node",)

    def __init__(self, node):
        self.node = node


def _update_value(column, value):
    """What ``Update.__sql__`` makes of ``value`` for ``column``: for a field without its
    own ``to_value`` that is ``Value(value, column.db_value)``, i.e. the converted value;
    for one with its own (JSON), the node it returns, composed as that method composes it."""
    if type(column).to_value is Field.to_value:
        return column.db_value(value)
    node = column.to_value(value)
    return _Composed(node if isinstance(node, Value) else qualify_names(node))


def _emit(ctx, pieces, order, converted) -> None:
    """The kept text with the converted values in marker order: each value of a plain
    type straight into the parameters, anything else through ``Context.value`` (a node
    composed in place, a model class) exactly as before."""
    values = list(converted)
    sql, parameters = ctx._sql, ctx._values
    placeholder = ctx.state.param or "?"
    direct = not ctx.state.value_literals
    sql.append(pieces[0])
    for index, piece in zip(order, pieces[1:], strict=True):
        value = values[index]
        if direct and type(value) in _PARAMETER_TYPES:
            parameters.append(value)
            sql.append(placeholder)
        elif type(value) is _Composed:
            ctx.sql(value.node)
        else:
            ctx.value(value, converter=False)
        sql.append(piece)


class ShapedInsert(ModelInsert):
    """``Model.insert(**row)`` whose text is composed once per shape."""

    def __sql__(self, ctx):
        key = self._shape(ctx)
        row = self._insert
        if key is None or not all(_plain(row[c], c) for c in row):
            return super().__sql__(ctx)
        defaults = self.model._meta.defaults
        missing = [column for column in defaults if column not in row]
        columns = [*row, *missing]
        text = _TEXTS.get(key)
        if text is None:
            template = self.clone()
            template._insert = {column: _Marker(i) for i, column in enumerate(columns)}
            text = _TEXTS[key] = _compose_text(ctx, template, Insert.__sql__, len(columns))
        if text is _UNCACHEABLE:
            return super().__sql__(ctx)
        pieces, order = text
        self._set_table_alias(ctx)
        values = [row[c] for c in row]
        for column in missing:  # as peewee: a default callable is called per statement
            default = defaults[column]
            values.append(default() if callable(default) else default)
        with ctx.scope_values(subquery=True):
            _emit(ctx, pieces, order, (c.db_value(v) for c, v in zip(columns, values, strict=True)))
        return ctx

    def _shape(self, ctx):
        if not _fresh(ctx) or self._cte_list or self._query_type != Insert.SIMPLE:
            return None
        if not self._insert or not all(
            isinstance(c, Field) and c.model is self.model for c in self._insert
        ):
            return None
        conflict, returning = _conflict_key(self._on_conflict), _returning_key(self._returning)
        backend = _backend(ctx)
        if _UNCACHEABLE in (conflict, returning) or backend is None:
            return None
        return ("insert", self.model, backend, tuple(self._insert), conflict, returning)


class ShapedUpdate(ModelUpdate):
    """``Model.update(**values).where(<key field> == value)`` (what ``save`` runs), or
    with a WHERE of several such comparisons joined by AND, its text composed once per
    shape."""

    def __sql__(self, ctx):
        key = self._shape(ctx)
        columns = list(self._update)
        if key is None or not all(_plain(self._update[c], c) for c in columns):
            return super().__sql__(ctx)
        leaves = _where_leaves(self._where)
        text = _TEXTS.get(key)
        if text is None:
            template = self.clone()
            template._update = {column: _Marker(i) for i, column in enumerate(columns)}
            template._where = _where_template(self._where, itertools.count(len(columns)))
            count = len(columns) + len(leaves)
            text = _TEXTS[key] = _compose_text(ctx, template, Update.__sql__, count)
        if text is _UNCACHEABLE:
            return super().__sql__(ctx)
        pieces, order = text
        self._set_table_alias(ctx)
        converted = [_update_value(c, self._update[c]) for c in columns]
        # each compared value as the WHERE converts it: by its field's db_value
        converted.extend(leaf.lhs.db_value(leaf.rhs) for leaf in leaves)
        with ctx.scope_values(subquery=True):
            _emit(ctx, pieces, order, converted)
        return ctx

    def _shape(self, ctx):
        if not _fresh(ctx) or self._cte_list or self._from or not self._update:
            return None
        if self._order_by or self._limit is not None or self._offset is not None:
            return None
        if not all(isinstance(c, Field) and c.model is self.model for c in self._update):
            return None
        where = _where_shape(self._where, self.model)
        if where is None:
            return None
        returning, backend = _returning_key(self._returning), _backend(ctx)
        if returning is _UNCACHEABLE or backend is None:
            return None
        columns = tuple(self._update)
        return ("update", self.model, backend, columns, where, returning)


def _where_shape(where, model):
    """The shape of a WHERE made of ``<field of model> = <value>`` comparisons joined by
    AND (the fields and the nesting; a foreign key compared with an id only), or None for
    any other WHERE."""
    if not isinstance(where, Expression):
        return None
    if where.op == OP.AND:
        left, right = _where_shape(where.lhs, model), _where_shape(where.rhs, model)
        return None if left is None or right is None else (OP.AND, where.flat, left, right)
    field, value = where.lhs, where.rhs
    if not (
        where.op == OP.EQ
        and isinstance(field, Field)
        and not isinstance(field, FieldAlias)
        and field.model is model
        and field._coerce
        and value is not None
        and not isinstance(value, Node | list | tuple | set | frozenset)
        and (type(value) is int or not isinstance(field, ForeignKeyField))
    ):
        return None
    return (OP.EQ, where.flat, field)


def _where_leaves(where) -> list:
    """The comparisons of a WHERE ``_where_shape`` took, left to right."""
    if where.op == OP.AND:
        return _where_leaves(where.lhs) + _where_leaves(where.rhs)
    return [where]


def _where_template(where, markers):
    """``where`` with the value of each comparison replaced by the next marker."""
    if where.op == OP.AND:
        left = _where_template(where.lhs, markers)
        return Expression(left, OP.AND, _where_template(where.rhs, markers), where.flat)
    return Expression(where.lhs, where.op, _Marker(next(markers)), where.flat)


class Param(Node):
    """A named value of a ``Prepared`` statement, converted as peewee converts the value
    it stands for (by the field it is compared with)."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def __sql__(self, ctx):
        return ctx.value(_Slot(self.name, ctx.state.converter), converter=False)


class _Slot:
    __slots__ = ("name", "converter")

    def __init__(self, name: str, converter):
        self.name, self.converter = name, converter


class _Params:
    """``p.anfrage`` in a statement's builder is the parameter named ``anfrage``."""

    def __getattr__(self, name: str) -> Param:
        return Param(name)


class Prepared:
    """A SELECT that peewee composes once per backend, then runs with new values.

    ``build`` receives the parameters (``p.name``) and returns the query; a parameter
    stands where a single value goes (``Field == p.x``, not ``in_``). The statement's
    rows come as the query would give them (model instances, tuples, dicts), built by
    the query's own cursor wrapper. For reads on the hot paths only: the text of a
    query of many shapes belongs to peewee's usual composition."""

    def __init__(self, build):
        self._build = build
        self._texts: dict[type, tuple] = {}

    def _text(self, database):
        backend = type(database)
        text = self._texts.get(backend)
        if text is None:
            query = self._build(_Params())
            sql, params = database.get_sql_context().sql(query).query()
            names = frozenset(p.name for p in params if type(p) is _Slot)
            text = self._texts[backend] = (query, sql, tuple(params), names, _row_builder(query))
        return text

    def rows(self, **values) -> list:
        from .database import db

        database = db.obj
        query, sql, params, names, build_row = self._text(database)
        if values.keys() != names:
            unknown, missing = sorted(set(values) - names), sorted(names - set(values))
            raise TypeError(f"parameters: unknown {unknown}, missing {missing}")
        bound = []
        for param in params:
            if type(param) is _Slot:
                value = values[param.name]
                if param.converter is not None:
                    value = param.converter(value)
                if isinstance(value, Node):
                    raise TypeError(f"parameter {param.name!r} converts to SQL, not a value")
                bound.append(value)
            else:
                bound.append(param)
        cursor = database.execute_sql(sql, bound)
        if build_row is None:
            return list(query._get_cursor_wrapper(cursor))
        try:
            return [build_row(row) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def first(self, **values):
        """The first row or None (give the query a LIMIT 1 where only one is wanted)."""
        found = self.rows(**values)
        return found[0] if found else None


def _row_builder(query):
    """For a select of plain fields of one model, without joins, giving model instances
    or tuples: a function that builds a row straight from the cursor's, as peewee's
    cursor wrappers build it (each value through its field's ``python_value``; an
    instance with nothing dirty), without resolving the cursor's columns anew for each
    statement. None for anything else (peewee's cursor wrapper builds those rows)."""
    if not isinstance(query, ModelSelect) or query._joins or query._from_list != [query.model]:
        return None
    fields = tuple(query._returning or ())
    if not fields or not all(
        isinstance(f, Field)
        and not isinstance(f, FieldAlias)
        and f.model is query.model
        and f._coerce
        for f in fields
    ):
        return None
    row_type = query._row_type or query.default_row_type
    converters = tuple(f.python_value for f in fields)
    if row_type == ROW.TUPLE:
        return lambda row: tuple(
            convert(value) for convert, value in zip(converters, row, strict=True)
        )
    if row_type != ROW.MODEL:
        return None
    model, names = query.model, tuple(f.name for f in fields)
    new = model.__new__

    def build(row):
        # what ``model(__no_default__=1, **values)`` makes, then ``_dirty.clear()``: its
        # __init__ sets each value through the field's accessor, which for a value read
        # from the database (a foreign key as its id) only stores it and marks it dirty
        instance = new(model)
        instance.__data__ = {
            name: convert(value)
            for name, convert, value in zip(names, converters, row, strict=True)
        }
        instance._dirty = set()
        instance.__rel__ = {}
        return instance

    return build
