package onnx

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// The few pieces of onnxruntime_c_api.h this file needs, declared here rather
// than vendoring the whole header. OrtApi is a table of function pointers that
// ONNX Runtime only appends to (its ABI promise: a released slot never moves),
// so a function is reached by its slot: the index in the table, as offsetof
// gives it in the 1.24 header onnxruntime_go v1.27 ships.
typedef struct OrtApi OrtApi;
typedef struct OrtStatus OrtStatus;
typedef struct OrtValue OrtValue;
typedef struct {
	const OrtApi* (*GetApi)(uint32_t version);
	const char* (*GetVersionString)(void);
} ferry_api_base;

enum {
	// GetResizedStringTensorElementBuffer arrived with API version 15 (ORT 1.15).
	ferry_api_version = 15,
	ferry_slot_get_error_message = 2,
	ferry_slot_release_status = 93,
	ferry_slot_get_resized_string_tensor_element_buffer = 252,
};

typedef const char* (*ferry_get_error_message)(const OrtStatus*);
typedef void (*ferry_release_status)(OrtStatus*);
typedef OrtStatus* (*ferry_get_resized_string_tensor_element_buffer)(OrtValue*, size_t, size_t, char**);

static void* ferry_slot(const OrtApi* api, int slot) { return ((void* const*)api)[slot]; }

// ferry_dl_error copies dlerror's message, which lives in a per-thread buffer
// that Go could read from another thread.
static char* ferry_dl_error(const char* what) {
	const char* e = dlerror();
	return strdup(e != NULL ? e : what);
}

// ferry_ort_api finds the OrtApi of the library at path, which must already be
// loaded (by onnxruntime_go): RTLD_NOLOAD never loads a second copy. *handle
// keeps the library loaded until dlclose. On failure it returns NULL and sets
// *err to a malloc'd message.
static const OrtApi* ferry_ort_api(const char* path, void** handle, char** err) {
	*handle = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
	if (*handle == NULL) {
		*err = ferry_dl_error("dlopen failed");
		return NULL;
	}
	const ferry_api_base* (*base)(void) = (const ferry_api_base* (*)(void))dlsym(*handle, "OrtGetApiBase");
	if (base == NULL) {
		*err = ferry_dl_error("no OrtGetApiBase");
		dlclose(*handle);
		return NULL;
	}
	// GetApi prints to stderr and returns NULL for a version it lacks.
	const OrtApi* api = base()->GetApi(ferry_api_version);
	if (api == NULL) {
		*err = strdup("the library has no API version 15 (ONNX Runtime 1.15 or later is needed)");
		dlclose(*handle);
	}
	return api;
}

static char* ferry_status_message(const OrtApi* api, OrtStatus* st) {
	char* msg = strdup(((ferry_get_error_message)ferry_slot(api, ferry_slot_get_error_message))(st));
	((ferry_release_status)ferry_slot(api, ferry_slot_release_status))(st);
	return msg;
}

// ferry_fill_strings sets element i of string tensor v to the spans[2i+1]
// bytes at data+spans[2i], by length, so the bytes may hold NULs. It returns
// NULL, or a malloc'd message from the first element ONNX Runtime refused.
static char* ferry_fill_strings(const OrtApi* api, OrtValue* v, const char* data, const size_t* spans, size_t n) {
	ferry_get_resized_string_tensor_element_buffer resize =
		(ferry_get_resized_string_tensor_element_buffer)ferry_slot(api, ferry_slot_get_resized_string_tensor_element_buffer);
	for (size_t i = 0; i < n; i++) {
		size_t off = spans[2 * i], len = spans[2 * i + 1];
		char* buf = NULL;
		OrtStatus* st = resize(v, i, len, &buf);
		if (st != NULL) {
			return ferry_status_message(api, st);
		}
		if (len > 0) {
			memcpy(buf, data + off, len);
		}
	}
	return NULL;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"
)

// stringAPI reaches the ONNX Runtime C function that fills a string tensor
// element by length (GetResizedStringTensorElementBuffer), which the binding
// does not wrap: its SetContents passes C strings, which end at the first NUL.
// A Runtime holds one from after the binding loads the library until after it
// destroys the environment.
type stringAPI struct {
	handle unsafe.Pointer // our reference to the library, from dlopen
	api    *C.OrtApi
}

// loadStringAPI finds the OrtApi of the library at path, which the binding
// must have loaded already, and checks that the binding's values still expose
// their OrtValue the way ortValue reads it.
func loadStringAPI(path string) (*stringAPI, error) {
	if err := checkValueInternals(); err != nil {
		return nil, err
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var handle unsafe.Pointer
	var cerr *C.char
	api := C.ferry_ort_api(cpath, &handle, &cerr)
	if api == nil {
		defer C.free(unsafe.Pointer(cerr))
		return nil, fmt.Errorf("onnx: find the ONNX Runtime C API in %s: %s", path, C.GoString(cerr))
	}
	return &stringAPI{handle: handle, api: api}, nil
}

// close drops this reference to the library; the API is unusable after it.
func (a *stringAPI) close() error {
	if C.dlclose(a.handle) != 0 {
		return errors.New("onnx: dlclose of the ONNX Runtime library failed")
	}
	return nil
}

// fill sets the elements of string tensor v to elems, which are subslices of
// data (one BYTES serialization): each is copied by its length, so NUL bytes
// pass intact. One cgo call fills every element.
func (a *stringAPI) fill(v *ort.StringTensor, data []byte, elems [][]byte) error {
	if n := v.GetShape().FlattenedSize(); int64(len(elems)) != n {
		return fmt.Errorf("%d strings for a tensor of %d elements", len(elems), n)
	}
	if len(elems) == 0 {
		return nil
	}
	ov, err := ortValue(v)
	if err != nil {
		return err
	}
	// spans holds each element's offset in data and its length; data and
	// spans are pointer-free Go memory, which cgo lets C read during the call.
	spans := make([]C.size_t, 2*len(elems))
	off := 0
	for i, e := range elems {
		off += 4 // the element's length prefix
		spans[2*i], spans[2*i+1] = C.size_t(off), C.size_t(len(e))
		off += len(e)
	}
	msg := C.ferry_fill_strings(a.api, ov, (*C.char)(unsafe.Pointer(unsafe.SliceData(data))), &spans[0], C.size_t(len(elems)))
	if msg != nil {
		defer C.free(unsafe.Pointer(msg))
		return fmt.Errorf("fill string tensor: %s", C.GoString(msg))
	}
	return nil
}

// valueInternalsField is the unexported field of the binding's
// ValueInternalData (v1.27) that holds the OrtValue pointer.
const valueInternalsField = "ortValue"

// checkValueInternals makes sure ValueInternalData still has the pointer
// ortValue reads, so a changed binding fails at start-up with a clear error.
func checkValueInternals() error {
	f, ok := reflect.TypeFor[ort.ValueInternalData]().FieldByName(valueInternalsField)
	if !ok || f.Type.Kind() != reflect.Pointer || f.Type.Elem().Name() != "_Ctype_struct_OrtValue" {
		return fmt.Errorf("onnx: onnxruntime_go's ValueInternalData has no *OrtValue field %q (the binding changed; string tensors cannot be filled by length)", valueInternalsField)
	}
	return nil
}

// ortValue is the OrtValue behind a value the binding made. The binding keeps
// it unexported (ValueInternalData.ortValue); reflect reads it, and
// checkValueInternals has checked its name and type.
func ortValue(v ort.Value) (*C.OrtValue, error) {
	f := reflect.ValueOf(v.GetInternals()).Elem().FieldByName(valueInternalsField)
	if !f.IsValid() || f.Kind() != reflect.Pointer || f.IsNil() {
		return nil, errors.New("the binding's value has no OrtValue")
	}
	return (*C.OrtValue)(f.UnsafePointer()), nil
}
