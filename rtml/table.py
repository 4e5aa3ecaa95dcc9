"""Rows of named, equal-length numpy columns: the table type of the detector and the dashboard.

Both processes only read rows from the database, filter, sort, split and sample them, and hand
columns to the drift engine, the model or a chart. A dict of equally long numpy arrays is enough
for that, and keeps pandas and pyarrow (~78 MiB of resident memory together) out of both
processes (see :mod:`rtml.lean` for the detector). :class:`Table` is that dict: immutable and
picklable (Streamlit's ``cache_data`` pickles it), and its arrays are read-only views.

Column types are inferred from the values the database driver returns, the way a DataFrame built
from the same rows would type them:

* only integers (no ``None``) → ``int64``; only booleans → ``bool``;
* numbers with a ``None`` or a float among them → ``float64``, ``None`` becoming ``nan``;
* anything else (text, parsed JSON, an empty column) → ``object``, ``None`` kept as ``None``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np


def column_array(values: Iterable[Any]) -> np.ndarray:
    """``values`` as a one-dimensional numpy array of the inferred type (see the module docstring).

    Parameters
    ----------
    values : iterable
        The column's values; a numpy array is returned as it is.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> column_array([1, 2]).dtype, column_array([1, None]).tolist(), column_array(["a", None]).tolist()
    (dtype('int64'), [1.0, nan], ['a', None])
    >>> column_array([{"psi": 0.1}, [1, 2]]).shape  # nested values stay single cells
    (2,)
    """
    if isinstance(values, np.ndarray):
        return values
    values = values if isinstance(values, (list, tuple)) else list(values)
    types = set(map(type, values))  # a handful of types, however many values: decide on those
    with_none = type(None) in types
    types.discard(type(None))
    if types and not with_none and all(issubclass(t, (bool, np.bool_)) for t in types):
        return np.array(values, dtype=bool)
    if types and all(issubclass(t, numbers.Real) and not issubclass(t, (bool, np.bool_)) for t in types):
        if not with_none and all(issubclass(t, numbers.Integral) for t in types):
            return np.array(values, dtype=np.int64)
        return np.array(values, dtype=np.float64)  # None → nan
    return np.fromiter(values, dtype=object, count=len(values))


def _read_only(values: np.ndarray) -> np.ndarray:
    """A read-only view: a Table never changes, nor do the arrays it hands out (or shares with others)."""
    view = values.view()
    view.flags.writeable = False
    return view


def _name_list(names: str | Sequence[str]) -> list[str]:
    """``names`` as a list; one bare name is one name, not its characters."""
    return [names] if isinstance(names, str) else list(names)


def is_missing(value: Any) -> bool:
    """Whether a cell holds no value: ``None`` or a NaN of any float type.

    Examples
    --------
    >>> is_missing(None), is_missing(float("nan")), is_missing(np.float32("nan")), is_missing(0.0), is_missing("")
    (True, True, True, False, False)
    """
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))


def _same_values(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype.kind == "f" and b.dtype.kind == "f":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def _python(value: Any) -> Any:
    """A numpy scalar as the Python value it holds; anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


class Table:
    """Rows stored as named numpy columns of one length; immutable, picklable.

    Parameters
    ----------
    columns : mapping of str to array-like
        Column name → values (in display order); every column must have the same length.
        Arrays are used as given, other values are converted with :func:`column_array`.

    Examples
    --------
    >>> c = Table({"at": [3.0, 1.0, 2.0], "event": ["c", "a", "b"]})
    >>> len(c), c.names, c.sorted_by("at")["event"].tolist()
    (3, ('at', 'event'), ['a', 'b', 'c'])
    >>> c.where(c["at"] > 1.5).row(0)
    {'at': 3.0, 'event': 'c'}
    """

    __slots__ = ("_data", "_n_rows")

    def __init__(self, columns: Mapping[str, Any]):
        data = {str(name): _read_only(column_array(values)) for name, values in columns.items()}
        lengths = {name: len(values) for name, values in data.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"Every column of a Table must have the same length. Got {lengths}.")
        self._data = data
        self._n_rows = next(iter(lengths.values()), 0)

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[Any]], names: Sequence[str]) -> Table:
        """Table from database rows (tuples in the order of ``names``).

        Parameters
        ----------
        rows : sequence of sequences
            What ``cursor.fetchall()`` returns.
        names : sequence of str
            The column names, in the order of the row values.

        Returns
        -------
        Table

        Examples
        --------
        >>> Table.from_rows([(1, "a"), (2, None)], ["id", "name"])["name"].tolist()
        ['a', None]
        >>> len(Table.from_rows([], ["id"]))
        0
        """
        widths = {len(row) for row in rows}
        if widths - {len(names)}:
            raise ValueError(f"Rows have {sorted(widths)} values; the names are {list(names)} ({len(names)}).")
        transposed = list(zip(*rows)) if rows else [()] * len(names)
        return cls(dict(zip(names, transposed)))

    @classmethod
    def no_rows(cls, names: Sequence[str]) -> Table:
        """No rows, with the columns ``names``.

        Parameters
        ----------
        names : sequence of str

        Returns
        -------
        Table
        """
        return cls.from_rows([], names)

    def __len__(self) -> int:
        return self._n_rows

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self._data[name]
        except KeyError:
            raise KeyError(f"No column {name!r}; the columns are {list(self._data)}.") from None

    def __contains__(self, name: object) -> bool:
        return name in self._data

    def __repr__(self) -> str:
        return f"Table(n_rows={self._n_rows}, names={list(self._data)})"

    def __getstate__(self) -> tuple[dict[str, np.ndarray], int]:
        return self._data, self._n_rows

    def __setstate__(self, state: tuple[dict[str, np.ndarray], int]) -> None:
        data, self._n_rows = state
        self._data = {name: _read_only(values) for name, values in data.items()}

    @property
    def names(self) -> tuple[str, ...]:
        """The column names, in order."""
        return tuple(self._data)

    def row(self, i: int) -> dict[str, Any]:
        """Row ``i`` (negative counts from the end) as ``{name: value}``, in Python types.

        Parameters
        ----------
        i : int

        Returns
        -------
        dict
        """
        return {name: _python(values[i]) for name, values in self._data.items()}

    def rows(self) -> Iterator[tuple]:
        """The rows as tuples, in column order.

        Returns
        -------
        iterator of tuple
        """
        return zip(*self._data.values()) if self._data else iter(())

    def as_mapping(self) -> Mapping[str, np.ndarray]:
        """A read-only name → array view (what :mod:`rtml.drift` accepts).

        Returns
        -------
        mapping of str to numpy.ndarray
        """
        return MappingProxyType(self._data)

    def equals(self, other: object) -> bool:
        """Same names in the same order and equal values (NaN equals NaN).

        Parameters
        ----------
        other : object

        Returns
        -------
        bool
        """
        return (isinstance(other, Table) and self.names == other.names and len(self) == len(other)
                and all(_same_values(self[name], other[name]) for name in self.names))

    def take(self, index: np.ndarray | Sequence[int] | slice) -> Table:
        """The rows at the integer positions (or slice) ``index``, in that order.

        Parameters
        ----------
        index : array-like of int, or slice

        Returns
        -------
        Table
        """
        if not isinstance(index, slice) and np.asarray(index).dtype == bool:
            raise TypeError("Table.take wants row positions; for a boolean mask use Table.where")
        if not isinstance(index, slice):
            index = np.asarray(index, dtype=np.intp)
        return Table({name: values[index] for name, values in self._data.items()})

    def where(self, mask: np.ndarray | Sequence[bool]) -> Table:
        """The rows where the boolean ``mask`` is true, in order.

        Parameters
        ----------
        mask : array-like of bool
            One flag per row.

        Returns
        -------
        Table
        """
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (self._n_rows,):
            raise ValueError(f"A row mask needs shape ({self._n_rows},). Got {mask.shape}.")
        return Table({name: values[mask] for name, values in self._data.items()})

    def sorted_by(self, name: str) -> Table:
        """The rows ordered by column ``name``, ascending (stable: ties keep their order).

        Parameters
        ----------
        name : str

        Returns
        -------
        Table
        """
        return self.take(np.argsort(self[name], kind="stable"))

    def reversed(self) -> Table:
        """The rows in reverse order.

        Returns
        -------
        Table
        """
        return self.take(slice(None, None, -1))

    def select(self, names: Sequence[str]) -> Table:
        """Only the columns ``names``, in that order.

        Parameters
        ----------
        names : sequence of str

        Returns
        -------
        Table
        """
        return Table({name: self[name] for name in _name_list(names)})

    def drop(self, names: Sequence[str]) -> Table:
        """Every column except ``names``.

        Parameters
        ----------
        names : sequence of str

        Returns
        -------
        Table
        """
        dropped = set(_name_list(names))
        return Table({name: values for name, values in self._data.items() if name not in dropped})

    def with_columns(self, columns: Mapping[str, Any]) -> Table:
        """A copy with ``columns`` added (or replaced, keeping their place).

        Parameters
        ----------
        columns : mapping of str to array-like
            One value per row each.

        Returns
        -------
        Table

        Examples
        --------
        >>> Table({"a": [1]}).with_columns({"b": ["x"]}).names
        ('a', 'b')
        """
        return Table({**self._data, **columns})


__all__ = ["Table", "column_array", "is_missing"]
