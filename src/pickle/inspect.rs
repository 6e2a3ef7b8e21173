//! What a pickle would import and call, read without running it.
//!
//! The reader replays the pickle machine's stack and memo with stand-in values
//! that keep only what inspection needs: strings (module and attribute names),
//! globals, tuples of those, and str-to-str dict entries (the `__qualname__` of a
//! by-value function is one). Nothing is imported and no callable is called.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use super::code_body::CodeBody;
use super::opcodes::code::*;
use super::opcodes::{Arg, DecodeError, decode};

/// A `module.name` a pickle refers to: each one is imported by `pickle.loads`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GlobalName {
    pub module: String,
    pub name: String,
}

impl GlobalName {
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.module, self.name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByValueKind {
    Function,
    Class,
    Enum,
    Module,
}

/// A function, class or module that travels by value, and what it costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByValueItem {
    pub kind: ByValueKind,
    /// The qualified name where the pickle states it.
    pub name: Option<String>,
    /// Bytes of the pickle that build and fill it (not counting what it shares).
    pub bytes: usize,
}

/// The result of reading a pickle.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub protocol: Option<u8>,
    /// Each global and how many times the pickle names it.
    pub globals: BTreeMap<GlobalName, usize>,
    /// Modules imported to load it: those of the globals, plus those that
    /// `subimport`-style reconstructors import by name.
    pub modules: BTreeSet<String>,
    /// Each global that is called (REDUCE, NEWOBJ, ...) and how often.
    pub calls: BTreeMap<GlobalName, usize>,
    pub by_value: Vec<ByValueItem>,
    pub out_of_band_buffers: usize,
    /// Length of the pickle up to and including STOP.
    pub length: usize,
}

/// Tuples nested deeper than this become opaque: inspection needs none that deep,
/// and dropping an arbitrarily deep tree would recurse without bound.
const MAX_TUPLE_DEPTH: u16 = 64;

/// A dict's str-to-str entries, shared because SETITEMS fills a dict after it was memoized.
type TextDict = Rc<RefCell<Vec<(Rc<str>, Rc<str>)>>>;

#[derive(Clone)]
enum Value {
    Text(Rc<str>),
    Int(i64),
    Global(Rc<GlobalName>),
    Tuple(Rc<[Value]>, u16),
    /// Bytes of up to `KEPT_BYTES`: a code's body, which holds its qualname.
    Bytes(Rc<[u8]>),
    Dict(TextDict),
    /// What a by-value reconstructor returned: an index into `Inspection::by_value`.
    Made(usize),
    Other,
}

/// A value on the stack, with the offset where the opcodes that built it begin.
#[derive(Clone)]
struct Slot {
    value: Value,
    start: usize,
}

enum Entry {
    Mark(usize),
    Slot(Slot),
}

/// Reads `pickle` up to its STOP opcode.
pub fn inspect(pickle: &[u8]) -> Result<Inspection, DecodeError> {
    Machine::default().run(pickle)
}

#[derive(Default)]
struct Machine {
    stack: Vec<Entry>,
    memo: BTreeMap<i64, Slot>,
    found: Inspection,
    /// By-value items whose state was already counted: a real pickle sets it
    /// once, a crafted one may repeat it to inflate the size.
    states_counted: BTreeSet<usize>,
}

impl Machine {
    fn run(mut self, pickle: &[u8]) -> Result<Inspection, DecodeError> {
        let mut offset = 0;
        loop {
            let (op, next) = decode(pickle, offset)?;
            if op.code == STOP {
                self.found.length = next;
                // Spans of crafted pickles may overlap; no part is larger than the whole.
                for item in &mut self.found.by_value {
                    item.bytes = item.bytes.min(next);
                }
                return Ok(self.found);
            }
            if let Some(bytes) = kept_bytes(pickle, op.code, &op.arg, next) {
                self.push(Value::Bytes(Rc::from(bytes)), offset);
                offset = next;
                continue;
            }
            self.step(op.code, op.arg, offset, next)
                .map_err(|message| DecodeError { offset, message })?;
            offset = next;
        }
    }

    fn step(&mut self, code: u8, arg: Arg<'_>, offset: usize, end: usize) -> Result<(), String> {
        match code {
            PROTO => self.found.protocol = int_arg(&arg).map(|p| p as u8),
            FRAME => {}
            MARK => self.stack.push(Entry::Mark(offset)),
            POP => {
                self.pop_any()?;
            }
            POP_MARK => {
                self.pop_to_mark()?;
            }
            DUP => {
                let top = self.top()?.clone();
                self.push(top.value, top.start);
            }
            GLOBAL | INST => self.global(arg, offset)?,
            STACK_GLOBAL => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (&module.value, &name.value) {
                    // The global's bytes begin with the module string's.
                    (Value::Text(m), Value::Text(n)) => self.push_global(m, n, module.start),
                    _ => return Err("STACK_GLOBAL needs a module and a name as strings".into()),
                }
            }
            REDUCE | NEWOBJ => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let made = self.call(&callable, &args.value, end);
                self.push(made, callable.start);
            }
            NEWOBJ_EX => {
                let _kwargs = self.pop()?;
                let args = self.pop()?;
                let callable = self.pop()?;
                let made = self.call(&callable, &args.value, end);
                self.push(made, callable.start);
            }
            OBJ => {
                let mut items = self.pop_to_mark()?;
                if items.is_empty() {
                    return Err("OBJ needs a class after the mark".into());
                }
                let callable = items.remove(0);
                let args = Value::Tuple(items.into_iter().map(|s| s.value).collect(), 1);
                let made = self.call(&callable, &args, end);
                self.push(made, callable.start);
            }
            BUILD => {
                self.pop()?;
                self.top()?;
            }
            EMPTY_TUPLE => self.push(Value::Tuple(Rc::from([]), 1), offset),
            TUPLE => {
                let start = self.mark_start()?;
                let items = self.pop_to_mark()?;
                self.push(tuple(items.into_iter().map(|s| s.value).collect()), start);
            }
            TUPLE1 | TUPLE2 | TUPLE3 => {
                let len = usize::from(code - TUPLE1 + 1);
                let items = self.pop_n(len)?;
                let start = items.first().map_or(offset, |s| s.start);
                self.push(tuple(items.into_iter().map(|s| s.value).collect()), start);
            }
            EMPTY_DICT => self.push(Value::Dict(Rc::default()), offset),
            DICT => {
                let start = self.mark_start()?;
                let items = self.pop_to_mark()?;
                let dict = Rc::new(RefCell::new(Vec::new()));
                add_items(&dict, items);
                self.push(Value::Dict(dict), start);
            }
            SETITEM => {
                let value = self.pop()?;
                let key = self.pop()?;
                if let Value::Dict(dict) = &self.top()?.value {
                    add_items(dict, vec![key, value]);
                }
            }
            SETITEMS => {
                let items = self.pop_to_mark()?;
                if let Value::Dict(dict) = &self.top()?.value {
                    add_items(dict, items);
                }
            }
            APPEND => {
                self.pop()?;
                self.top()?;
            }
            APPENDS | ADDITEMS => {
                self.pop_to_mark()?;
                self.top()?;
            }
            LIST => {
                let start = self.mark_start()?;
                self.pop_to_mark()?;
                self.push(Value::Other, start);
            }
            FROZENSET => {
                let start = self.mark_start()?;
                self.pop_to_mark()?;
                self.push(Value::Other, start);
            }
            PUT | BINPUT | LONG_BINPUT => {
                let slot = self.top()?.clone();
                self.memo.insert(int_arg(&arg).ok_or("memo index missing")?, slot);
            }
            MEMOIZE => {
                let slot = self.top()?.clone();
                let index = self.memo.len() as i64;
                self.memo.insert(index, slot);
            }
            GET | BINGET | LONG_BINGET => {
                let index = int_arg(&arg).ok_or("memo index missing")?;
                let slot = self
                    .memo
                    .get(&index)
                    .ok_or_else(|| format!("memo entry {index} was never stored"))?;
                // The value comes from elsewhere; only the GET itself is part of what follows.
                self.push(slot.value.clone(), offset);
            }
            BINPERSID => {
                self.pop()?;
                self.push(Value::Other, offset);
            }
            NEXT_BUFFER => {
                self.found.out_of_band_buffers += 1;
                self.push(Value::Other, offset);
            }
            READONLY_BUFFER => {
                self.top()?;
            }
            EXT1 | EXT2 | EXT4 => return Err("extension registry codes cannot be resolved without running".into()),
            _ => self.push(plain_value(arg), offset),
        }
        Ok(())
    }

    fn global(&mut self, arg: Arg<'_>, offset: usize) -> Result<(), String> {
        match arg {
            Arg::Global(module, name) => {
                self.push_global(module, name, offset);
                Ok(())
            }
            _ => Err("GLOBAL without module and name".into()),
        }
    }

    fn push_global(&mut self, module: &str, name: &str, start: usize) {
        let global = self.record_global(module, name);
        self.push(global, start);
    }

    /// Counts a global the pickle names, and returns it as a value.
    fn record_global(&mut self, module: &str, name: &str) -> Value {
        let global = GlobalName {
            module: module.to_owned(),
            name: name.to_owned(),
        };
        *self.found.globals.entry(global.clone()).or_default() += 1;
        self.found.modules.insert(global.module.clone());
        Value::Global(Rc::new(global))
    }

    /// Records a call, and what a known reconstructor makes or imports.
    fn call(&mut self, callable: &Slot, args: &Value, end: usize) -> Value {
        let Value::Global(global) = &callable.value else {
            return Value::Other;
        };
        *self.found.calls.entry((**global).clone()).or_default() += 1;
        let bytes = end - callable.start;
        let role = match reconstructor_role(global) {
            // `new_function(skeleton, state)` fills what an earlier call made.
            Some(Role::Make(ByValueKind::Function)) if matches!(tuple_item(args, 0), Some(Value::Made(_))) => {
                Some(Role::SetState)
            }
            // `new_function(fields, None)` makes a code object among another
            // code's constants: part of that function, not an item of its own.
            Some(Role::Make(ByValueKind::Function)) if is_code_alone(args) => None,
            role => role,
        };
        match role {
            Some(Role::Make(kind)) => {
                if kind == ByValueKind::Function
                    && let Some(state) = tuple_item(args, 2)
                {
                    self.add_state_modules(&state);
                }
                let name = name_in_args(kind, args);
                self.found.by_value.push(ByValueItem { kind, name, bytes });
                Value::Made(self.found.by_value.len() - 1)
            }
            Some(Role::SetState) => {
                if let Some(state) = tuple_item(args, 1) {
                    self.add_state_modules(&state);
                }
                self.add_state(args, bytes);
                Value::Other
            }
            Some(Role::Import { by_value }) => {
                if let Some(Value::Text(module)) = tuple_item(args, 0) {
                    self.found.modules.insert(module.to_string());
                    if by_value {
                        let name = Some(module.to_string());
                        self.found.by_value.push(ByValueItem {
                            kind: ByValueKind::Module,
                            name,
                            bytes,
                        });
                    }
                }
                Value::Other
            }
            // `builtins_class(name)` is the global `builtins.<name>` by
            // another spelling: listed, and called when called, as that.
            Some(Role::BuiltinsClass) => match tuple_item(args, 0) {
                Some(Value::Text(name)) => self.record_global("builtins", &name),
                _ => Value::Other,
            },
            Some(Role::Descriptor) => {
                if let Some(Value::Int(kind)) = tuple_item(args, 0)
                    && let Some(wrapper) = descriptor_wrapper(kind)
                {
                    *self.found.calls.entry(wrapper).or_default() += 1;
                }
                Value::Other
            }
            None => Value::Other,
        }
    }

    /// The modules a `new_function` state imports by name: the submodules
    /// (item 11, a tuple of names) and the module globals (item 12, a flat
    /// tuple of global names and module names, or a dict of global name to
    /// module name in earlier releases), found in a compact state by its
    /// bits (see `state_item`). Other states have no such items.
    fn add_state_modules(&mut self, state: &Value) {
        if let Some(Value::Tuple(names, _)) = state_item(state, 11) {
            for name in names.iter() {
                if let Value::Text(name) = name {
                    self.found.modules.insert(name.to_string());
                }
            }
        }
        match state_item(state, 12) {
            Some(Value::Tuple(pairs, _)) => {
                for module in pairs.iter().skip(1).step_by(2) {
                    if let Value::Text(module) = module {
                        self.found.modules.insert(module.to_string());
                    }
                }
            }
            Some(Value::Dict(modules)) => {
                for (_, module) in modules.borrow().iter() {
                    self.found.modules.insert(module.to_string());
                }
            }
            _ => {}
        }
    }

    /// `setstate(obj, state)`: its bytes belong to `obj`, and a function's state names it.
    fn add_state(&mut self, args: &Value, bytes: usize) {
        let Some(Value::Made(index)) = tuple_item(args, 0) else {
            return;
        };
        if !self.states_counted.insert(index) {
            return;
        }
        let item = &mut self.found.by_value[index];
        item.bytes += bytes;
        if item.name.is_none() {
            item.name = tuple_item(args, 1).and_then(|state| qualname_in_state(&state));
        }
    }

    fn push(&mut self, value: Value, start: usize) {
        self.stack.push(Entry::Slot(Slot { value, start }));
    }

    fn top(&self) -> Result<&Slot, String> {
        match self.stack.last() {
            Some(Entry::Slot(slot)) => Ok(slot),
            Some(Entry::Mark(_)) => Err("a value was expected but the stack top is a mark".into()),
            None => Err("stack underflow".into()),
        }
    }

    fn pop(&mut self) -> Result<Slot, String> {
        match self.stack.pop() {
            Some(Entry::Slot(slot)) => Ok(slot),
            Some(Entry::Mark(_)) => Err("a value was expected but a mark was found".into()),
            None => Err("stack underflow".into()),
        }
    }

    fn pop_any(&mut self) -> Result<(), String> {
        self.stack.pop().map(|_| ()).ok_or_else(|| "stack underflow".into())
    }

    fn pop_n(&mut self, n: usize) -> Result<Vec<Slot>, String> {
        let mut items = (0..n).map(|_| self.pop()).collect::<Result<Vec<_>, _>>()?;
        items.reverse();
        Ok(items)
    }

    fn mark_start(&self) -> Result<usize, String> {
        self.stack
            .iter()
            .rev()
            .find_map(|entry| match entry {
                Entry::Mark(offset) => Some(*offset),
                Entry::Slot(_) => None,
            })
            .ok_or_else(|| "no mark on the stack".into())
    }

    fn pop_to_mark(&mut self) -> Result<Vec<Slot>, String> {
        let mut items = Vec::new();
        loop {
            match self.stack.pop() {
                Some(Entry::Slot(slot)) => items.push(slot),
                Some(Entry::Mark(_)) => break,
                None => return Err("no mark on the stack".into()),
            }
        }
        items.reverse();
        Ok(items)
    }
}

fn tuple(items: Vec<Value>) -> Value {
    let depth = 1 + items
        .iter()
        .map(|v| if let Value::Tuple(_, d) = v { *d } else { 0 })
        .max()
        .unwrap_or(0);
    if depth > MAX_TUPLE_DEPTH {
        Value::Other
    } else {
        Value::Tuple(items.into(), depth)
    }
}

/// Whether `new_function`'s arguments are code fields and no globals.
fn is_code_alone(args: &Value) -> bool {
    let Value::Tuple(items, _) = args else {
        return false;
    };
    items.len() == 2 && matches!(items[0], Value::Tuple(..)) && !matches!(items[1], Value::Dict(_))
}

fn tuple_item(value: &Value, index: usize) -> Option<Value> {
    match value {
        Value::Tuple(items, _) => items.get(index).cloned(),
        _ => None,
    }
}

/// Keeps the str-to-str entries of key/value slots: all that inspection reads.
fn add_items(dict: &TextDict, items: Vec<Slot>) {
    let mut dict = dict.borrow_mut();
    for pair in items.chunks(2) {
        if let [
            Slot {
                value: Value::Text(key),
                ..
            },
            Slot {
                value: Value::Text(value),
                ..
            },
        ] = pair
        {
            dict.push((key.clone(), value.clone()));
        }
    }
}

fn int_arg(arg: &Arg<'_>) -> Option<i64> {
    match arg {
        Arg::Int(value) => Some(*value),
        _ => None,
    }
}

/// Bytes objects longer than this are not kept (a code's body is far
/// shorter; data may be far longer).
const KEPT_BYTES: usize = 64 * 1024;

/// The bytes a bytes opcode that ends at `end` pushes, if they are kept.
fn kept_bytes<'a>(pickle: &'a [u8], code: u8, arg: &Arg<'_>, end: usize) -> Option<&'a [u8]> {
    match (code, arg) {
        (SHORT_BINBYTES | BINBYTES | BINBYTES8, &Arg::Bytes(length)) if length <= KEPT_BYTES => {
            pickle.get(end.checked_sub(length)?..end)
        }
        _ => None,
    }
}

fn plain_value(arg: Arg<'_>) -> Value {
    match arg {
        Arg::Text(text) => Value::Text(Rc::from(text)),
        Arg::Int(value) => Value::Int(value),
        _ => Value::Other,
    }
}

enum Role {
    Make(ByValueKind),
    SetState,
    Import {
        by_value: bool,
    },
    /// `make_descriptor(kind, *parts)`: calls the builtin wrapper type that
    /// `kind` names, which a policy should see as a call.
    Descriptor,
    /// `builtins_class(name)`: the class `builtins.<name>`.
    BuiltinsClass,
}

/// The reconstructors of every wire target, recognised by name: flightpickle's own
/// (`flightpickle._<name>`, and `flightpickle._reconstruct.<name>` in older
/// pickles) and cloudpickle's (`cloudpickle.cloudpickle`,
/// `pyspark.cloudpickle.cloudpickle`, and the old `cloudpickle_fast`).
fn reconstructor_role(global: &GlobalName) -> Option<Role> {
    let ours = global.module == "flightpickle._reconstruct"
        || (global.module == "flightpickle" && global.name.starts_with('_'));
    let cloudpickles =
        global.module.ends_with("cloudpickle.cloudpickle") || global.module.ends_with("cloudpickle_fast");
    if !ours && !cloudpickles {
        return None;
    }
    let name = global.name.trim_start_matches('_');
    match name {
        "make_function" | "new_function" => Some(Role::Make(ByValueKind::Function)),
        "make_skeleton_class" => Some(Role::Make(ByValueKind::Class)),
        "make_skeleton_enum" => Some(Role::Make(ByValueKind::Enum)),
        "function_setstate" | "fill_function" | "class_setstate" => Some(Role::SetState),
        "subimport" => Some(Role::Import { by_value: false }),
        "dynamic_subimport" => Some(Role::Import { by_value: true }),
        "make_descriptor" if ours => Some(Role::Descriptor),
        "builtins_class" if ours => Some(Role::BuiltinsClass),
        _ => None,
    }
}

/// The builtin that `make_descriptor` calls for `kind`: the codes are
/// flightpickle's wire format (0, 1, 2).
fn descriptor_wrapper(kind: i64) -> Option<GlobalName> {
    let name = match kind {
        0 => "staticmethod",
        1 => "classmethod",
        2 => "property",
        _ => return None,
    };
    Some(GlobalName {
        module: "builtins".into(),
        name: name.into(),
    })
}

/// The name a class or enum skeleton is made with: its second argument, or its
/// third (the qualname) for enums. Functions are named by their state: the
/// third argument of `new_function`, else (None there, or `make_function`)
/// the state set afterwards.
fn name_in_args(kind: ByValueKind, args: &Value) -> Option<String> {
    let index = match kind {
        ByValueKind::Class => 1,
        ByValueKind::Enum => 2,
        ByValueKind::Function => {
            let in_state = tuple_item(args, 2).and_then(|state| qualname_in_state(&state));
            return in_state.or_else(|| tuple_item(args, 0).and_then(|fields| qualname_in_code_fields(&fields)));
        }
        ByValueKind::Module => return None,
    };
    match tuple_item(args, index) {
        Some(Value::Text(name)) => Some(name.to_string()),
        _ => None,
    }
}

/// A function's qualname in its state: the second item of `new_function`'s
/// state tuple, or the `__qualname__` entry of the slot dict, the second item
/// of `(attributes, slots)` (`make_function`'s shape).
fn qualname_in_state(state: &Value) -> Option<String> {
    if is_compact_state(state) {
        return match state_item(state, 1)? {
            Value::Text(qualname) => Some(qualname.to_string()),
            _ => None,
        };
    }
    match tuple_item(state, 1)? {
        Value::Text(qualname) => Some(qualname.to_string()),
        Value::Dict(slots) => slots
            .borrow()
            .iter()
            .find(|(k, _)| &**k == "__qualname__")
            .map(|(_, v)| v.to_string()),
        _ => None,
    }
}

/// Whether `state` is a compact `new_function` state: `(bits, *items)`,
/// bit `i` set when the item at position `i` of the full state follows.
fn is_compact_state(state: &Value) -> bool {
    matches!(tuple_item(state, 0), Some(Value::Int(_)))
}

/// The item at `position` of a `new_function` state, full or compact;
/// None where a compact state leaves it out.
fn state_item(state: &Value, position: u32) -> Option<Value> {
    let Some(Value::Int(bits)) = tuple_item(state, 0) else {
        return tuple_item(state, position as usize);
    };
    if position >= 16 || bits & 1 << position == 0 {
        return None;
    }
    let before = (bits & ((1 << position) - 1)).count_ones() as usize;
    tuple_item(state, before + 1)
}

/// A function's qualname in its code's body, the second of the bundled
/// fields `(mark, body, consts, names, filename)`: where a compact state
/// leaves it out, it is the code's.
fn qualname_in_code_fields(fields: &Value) -> Option<String> {
    match fields {
        Value::Tuple(items, _) if items.len() == 5 => match &items[1] {
            Value::Bytes(body) => {
                let body = CodeBody::decode(body).ok()?;
                String::from_utf8(body.qualname.to_vec()).ok()
            }
            _ => None,
        },
        _ => None,
    }
}
