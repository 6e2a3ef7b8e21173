//! Record batches across JNI through the Arrow C Data Interface, without copies.
//!
//! Ownership, in both directions, follows the interface's rule: whoever fills
//! an `ArrowArray`/`ArrowSchema` struct owns what it points to until the
//! consumer calls the struct's `release` callback, exactly once.
//!
//! - **JVM to Rust** (input batches): the JVM allocates the two structs and
//!   exports a `VectorSchemaRoot` into them with Arrow Java's C Data classes
//!   (shaded into the plugin jar). Those classes ask this library to install
//!   the `release` callback (`export` below), which keeps
//!   a global reference to the Java side's `PrivateData`. Rust then moves the
//!   structs out of JVM memory (`FFI_ArrowArray::from_raw` leaves the JVM's
//!   copy marked released), wraps the JVM's buffers in Arrow arrays, and
//!   calling `release` when the last array is dropped closes the `PrivateData`,
//!   which hands the buffers back to the JVM's allocator.
//! - **Rust to JVM** (result batches): the JVM allocates the two structs and
//!   Rust writes arrow-rs' exported structs into them; their `release` (set by
//!   arrow-rs) drops Rust's reference to the buffers. Arrow Java imports them
//!   and calls `release` (through `release` below) when
//!   its last vector over them is closed.

use std::ffi::{c_char, c_void};

use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema, from_ffi};
use arrow_array::{Array, RecordBatch, StructArray};
use arrow_schema::{DataType, Schema};
use jni::objects::JObject;
use jni::refs::Global;
use jni::{Env, JavaVM, jni_sig, jni_str};

use crate::error::NativeError;

/// `struct ArrowArray` of the C Data Interface, with fields this side writes.
#[repr(C)]
struct CArray {
    length: i64,
    null_count: i64,
    offset: i64,
    n_buffers: i64,
    n_children: i64,
    buffers: *mut *const c_void,
    children: *mut *mut CArray,
    dictionary: *mut CArray,
    release: Option<unsafe extern "C" fn(*mut CArray)>,
    private_data: *mut c_void,
}

/// `struct ArrowSchema` of the C Data Interface.
#[repr(C)]
struct CSchema {
    format: *const c_char,
    name: *const c_char,
    metadata: *const c_char,
    flags: i64,
    n_children: i64,
    children: *mut *mut CSchema,
    dictionary: *mut CSchema,
    release: Option<unsafe extern "C" fn(*mut CSchema)>,
    private_data: *mut c_void,
}

/// A struct's address as the JVM passes it, checked for null.
fn address<T>(address: i64, what: &str) -> Result<*mut T, NativeError> {
    if address == 0 {
        return Err(NativeError::invalid_argument(&format!("the {what} address is null")));
    }
    Ok(address as usize as *mut T)
}

/// The Java side's `PrivateData` of an exported struct, closed on release.
struct JavaOwner(Global<JObject<'static>>);

impl JavaOwner {
    /// Closes the `PrivateData`, from whatever thread the last Rust array
    /// over the JVM's buffers was dropped on. A failure cannot be reported
    /// to anyone from inside a release callback: at worst the JVM's buffers
    /// stay allocated until its allocator is closed, which reports them.
    fn close(self) {
        let closed = JavaVM::singleton().and_then(|vm| {
            vm.attach_current_thread(|env: &mut Env| -> jni::errors::Result<()> {
                env.call_method(&*self.0, jni_str!("close"), jni_sig!("()V"), &[])?;
                Ok(())
            })
        });
        if let Err(error) = closed {
            // Nobody to return this to: the executor's log is where it can be seen.
            eprintln!("flightpickle: releasing JVM buffers handed to Rust failed: {error}");
        }
    }
}

/// What releasing and exporting need of `CArray` and `CSchema` alike: the fields
/// the two structs share, by the same names.
trait CStruct: Sized {
    /// The struct's name in the interface, for errors.
    const NAME: &'static str;
    fn release(&mut self) -> &mut Option<unsafe extern "C" fn(*mut Self)>;
    fn private_data(&mut self) -> &mut *mut c_void;
    fn children(&self) -> (*mut *mut Self, i64);
    fn dictionary(&self) -> *mut Self;
}

macro_rules! c_struct {
    ($struct:ty, $name:literal) => {
        impl CStruct for $struct {
            const NAME: &'static str = $name;
            fn release(&mut self) -> &mut Option<unsafe extern "C" fn(*mut Self)> {
                &mut self.release
            }
            fn private_data(&mut self) -> &mut *mut c_void {
                &mut self.private_data
            }
            fn children(&self) -> (*mut *mut Self, i64) {
                (self.children, self.n_children)
            }
            fn dictionary(&self) -> *mut Self {
                self.dictionary
            }
        }
    };
}

c_struct!(CArray, "ArrowArray");
c_struct!(CSchema, "ArrowSchema");

/// The release callback `export` installs on a struct Arrow Java filled.
unsafe extern "C" fn release_exported<T: CStruct>(exported: *mut T) {
    // SAFETY: Arrow calls release with the struct it was installed on, whose
    // private data `export` set to a boxed `JavaOwner`; its children and
    // dictionary are structs Arrow Java exported the same way.
    unsafe {
        if exported.is_null() || (*exported).release().is_none() {
            return;
        }
        // The interface makes the producer's release release the children
        // too; Arrow Java's PrivateData only frees their structs.
        let (children, n_children) = (*exported).children();
        for i in 0..usize::try_from(n_children).unwrap_or(0) {
            release_child(*children.add(i));
        }
        release_child((*exported).dictionary());
        let owner = Box::from_raw((*exported).private_data().cast::<JavaOwner>());
        *(*exported).release() = None;
        *(*exported).private_data() = std::ptr::null_mut();
        close_caught(owner);
    }
}

/// Calls the release callback of a child (or dictionary) struct, if it has one.
///
/// # Safety
/// `child` is null or a valid struct of the interface.
unsafe fn release_child<T: CStruct>(child: *mut T) {
    // SAFETY: the caller's promise; the child's own producer installed its callback.
    unsafe {
        if !child.is_null()
            && let Some(release) = *(*child).release()
        {
            release(child);
        }
    }
}

/// Closes `owner`, keeping a panic from unwinding into the C caller of a release callback.
fn close_caught(owner: Box<JavaOwner>) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| owner.close())).is_err() {
        eprintln!("flightpickle: a panic while releasing JVM buffers handed to Rust");
    }
}

fn owner(env: &Env<'_>, private_data: &JObject<'_>) -> Result<*mut c_void, NativeError> {
    if private_data.is_null() {
        return Err(NativeError::invalid_argument(
            "the exported struct's private data is null",
        ));
    }
    let global = env.new_global_ref(private_data)?;
    Ok(Box::into_raw(Box::new(JavaOwner(global))).cast())
}

/// Arrow Java's `JniWrapper.exportArray` (`is_array`) or `exportSchema`: installs the
/// release callback on the struct the JVM filled.
pub fn export(
    env: &Env<'_>,
    struct_address: i64,
    private_data: &JObject<'_>,
    is_array: bool,
) -> Result<(), NativeError> {
    if is_array {
        export_into::<CArray>(env, struct_address, private_data)
    } else {
        export_into::<CSchema>(env, struct_address, private_data)
    }
}

fn export_into<T: CStruct>(env: &Env<'_>, struct_address: i64, private_data: &JObject<'_>) -> Result<(), NativeError> {
    let exported = address::<T>(struct_address, T::NAME)?;
    let data = owner(env, private_data)?;
    // SAFETY: the JVM passes the address of a struct of this kind it allocated and filled.
    unsafe {
        *(*exported).private_data() = data;
        *(*exported).release() = Some(release_exported::<T>);
    }
    Ok(())
}

/// Arrow Java's `JniWrapper.releaseArray` (`is_array`) or `releaseSchema`: calls the
/// struct's own release, if any.
pub fn release(struct_address: i64, is_array: bool) -> Result<(), NativeError> {
    if is_array {
        release_at::<CArray>(struct_address)
    } else {
        release_at::<CSchema>(struct_address)
    }
}

fn release_at<T: CStruct>(struct_address: i64) -> Result<(), NativeError> {
    let released = address::<T>(struct_address, T::NAME)?;
    // SAFETY: the address is a struct of this kind; its release, when set, is its producer's.
    unsafe {
        if let Some(release) = *(*released).release() {
            release(released);
        }
    }
    Ok(())
}

fn arrow_error(error: arrow_schema::ArrowError) -> NativeError {
    NativeError::new("arrow", format!("Arrow C data: {error}"))
}

/// Takes a schema the JVM exported; the JVM's struct is left released.
pub fn import_schema(schema_address: i64) -> Result<Schema, NativeError> {
    let raw = address::<FFI_ArrowSchema>(schema_address, "ArrowSchema")?;
    // SAFETY: the JVM exported a schema into the struct at this address and
    // hands it over; from_raw moves it out and marks the original released.
    let schema = unsafe { FFI_ArrowSchema::from_raw(raw) };
    Schema::try_from(&schema).map_err(arrow_error)
}

/// Takes a record batch the JVM exported as a struct array, without copying
/// its buffers; they go back to the JVM when the batch is dropped.
pub fn import_batch(array_address: i64, schema_address: i64) -> Result<RecordBatch, NativeError> {
    let array_raw = address::<FFI_ArrowArray>(array_address, "ArrowArray")?;
    let schema_raw = address::<FFI_ArrowSchema>(schema_address, "ArrowSchema")?;
    // SAFETY: as in import_schema, for both structs; the array is owned by
    // `array` from here on and released when its data is dropped.
    let (array, schema) = unsafe {
        (
            FFI_ArrowArray::from_raw(array_raw),
            FFI_ArrowSchema::from_raw(schema_raw),
        )
    };
    // SAFETY: the schema describes the array; both come from one export.
    let data = unsafe { from_ffi(array, &schema) }.map_err(arrow_error)?;
    if !matches!(data.data_type(), DataType::Struct(_)) {
        return Err(NativeError::invalid_argument(
            "a batch must be exported as a struct array",
        ));
    }
    Ok(RecordBatch::from(StructArray::from(data)))
}

/// Writes `batch`, as a struct array, into structs the JVM allocated.
pub fn export_batch(batch: RecordBatch, array_address: i64, schema_address: i64) -> Result<(), NativeError> {
    let array_raw = address::<FFI_ArrowArray>(array_address, "ArrowArray")?;
    let schema_raw = address::<FFI_ArrowSchema>(schema_address, "ArrowSchema")?;
    let data = StructArray::from(batch).into_data();
    let schema = FFI_ArrowSchema::try_from(data.data_type()).map_err(arrow_error)?;
    let array = FFI_ArrowArray::new(&data);
    // SAFETY: the JVM allocated both structs (empty, released) for this call;
    // writing moves ownership of the exported data to whoever releases them.
    unsafe {
        std::ptr::write(array_raw, array);
        std::ptr::write(schema_raw, schema);
    }
    Ok(())
}
