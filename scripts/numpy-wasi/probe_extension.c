#define PY_SSIZE_T_CLEAN
#include <Python.h>
static PyObject *answer(PyObject *self, PyObject *args) {
    PyObject *list = PyList_New(0);
    for (long i = 0; i < 3; i++) PyList_Append(list, PyLong_FromLong(i * 21));
    PyObject *d = Py_BuildValue("{s:O,s:n,s:d}", "list", list, "ssize", (Py_ssize_t)sizeof(void *), "pi", 3.25);
    Py_DECREF(list);
    return d;
}
static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, "a dict"}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "hello2", "probe", -1, methods};
PyMODINIT_FUNC PyInit_hello2(void) { return PyModule_Create(&def); }
