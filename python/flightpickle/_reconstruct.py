"""Load-time reconstructors: a WIRE FORMAT.

Pickles written by flightpickle name these functions as
``flightpickle._<name>`` (the package binds them; an undotted module is
cheaper for the unpickler to import on every load), and pickles written by
earlier releases as ``flightpickle._reconstruct.<name>``, so both paths,
these names and the arguments they accept must stay loadable by every later
release. Add names freely; never rename or remove one, or change what it
accepts.

The functions are implemented in Rust (``flightpickle._native``) and report
the package as their ``__module__``, which is how pickle names them. Their
argument and state shapes follow cloudpickle 3.1's reconstructors of the
same purpose, but for ``new_function`` and ``fill_function``, the denser
shape of flightpickle's own writer.
"""

from ._native import _reconstruct as _impl

# Functions: make_function(code, globals, name, argdefs, closure) makes the
# skeleton; function_setstate(func, (dict, slots)) fills it.
make_function = _impl._make_function
function_setstate = _impl._function_setstate

# Functions, the native writer's dense shape (see reconstruct/functions.rs):
# new_function(code_fields, globals, state) makes and fills a function in
# one call (state None: a skeleton with empty cells); a fourth argument,
# (bits of the keys present, *values), sets the module's identity keys into
# globals, which the pickle then sends empty; new_function(func,
# state) fills a skeleton whose state refers back to it, as fill_function
# does in pickles of earlier releases. The state's used globals and module
# globals are flat (name, value, ...) tuples (dicts in earlier pickles, which
# still load), and a fourteenth item, when present, names the globals bound
# to the function itself.
new_function = _impl._new_function
fill_function = _impl._fill_function

# Class bodies' descriptors, the native writer's shape (see
# reconstruct/descriptors.rs): make_descriptor(kind, *parts) calls
# staticmethod (kind 0), classmethod (1) or property (2) with parts.
make_descriptor = _impl._make_descriptor

# Closure cells: make_cell(value), make_empty_cell().
make_cell = _impl._make_cell
make_empty_cell = _impl._make_empty_cell

# Classes: builtin_type(name) for types.<name>; make_skeleton_class(metaclass,
# name, bases, type_kwargs, tracker_id, extra) and make_skeleton_enum(bases,
# name, qualname, members, module, tracker_id, extra) make the skeleton;
# class_setstate(cls, (body, slots)) fills it. The native writer passes the
# metaclass None for ``type`` and no bases for ``(object,)``, and fills a
# class that has no ``__setstate__`` with BUILD's ``(None, body)``.
builtin_type = _impl._builtin_type
# builtins_class(name): builtins.<name>, a class, found more cheaply than the
# global (see reconstruct.rs); the native writer's shape for builtin classes.
builtins_class = _impl._builtins_class
make_skeleton_class = _impl._make_skeleton_class
make_skeleton_enum = _impl._make_skeleton_enum
class_setstate = _impl._class_setstate

# Modules: subimport(name) imports; dynamic_subimport(name, namespace) builds.
subimport = _impl._subimport
dynamic_subimport = _impl._dynamic_subimport

# Dict views: make_dict_keys/values(list, is_ordered=False),
# make_dict_items(dict, is_ordered=False).
make_dict_keys = _impl._make_dict_keys
make_dict_values = _impl._make_dict_values
make_dict_items = _impl._make_dict_items

# Named objects: get_dataclass_field_type_sentinel(name), make_typevar(name,
# bound, constraints, covariant, contravariant, tracker_id),
# make_paramspec(name, bound, covariant, contravariant, tracker_id),
# make_typevartuple(name, tracker_id), make_newtype(qualname, supertype,
# module, tracker_id).
get_dataclass_field_type_sentinel = _impl._get_dataclass_field_type_sentinel
make_typevar = _impl._make_typevar
make_paramspec = _impl._make_paramspec
make_typevartuple = _impl._make_typevartuple
make_newtype = _impl._make_newtype

# Dataclasses, the native writer's shape (see reconstruct/dataclass_parts.rs):
# make_dataclass_part(kind, names, values, missing=0) makes a "Field" or
# "_DataclassParams" of dataclasses from its slot names and values; a field's
# _field_type travels as the marker's name, metadata None is the empty
# metadata of dataclasses, and bit i of missing makes names[i] MISSING.
make_dataclass_part = _impl._make_dataclass_part

# Text files: file_reconstructor(stringio) returns the copy it is given.
file_reconstructor = _impl._file_reconstructor
