"""Course layer APIs: grade code written for a course's own function signatures, as it is.

``tinycnn check --api API FILE`` grades a file written against a course's layer API instead of
the op contract (``conv2d_forward(x, w, b, stride, padding)`` ...). The checker, not the student,
translates: each contract function is built here from the course's functions, and the contract's
cases are run through it. The translation changes argument *packaging* only (parameter
dictionaries, caches, layouts); the numbers are the student's, compared with the reference like
any submission's. The contract's conventions still apply (the kernel is not flipped, the ReLU
gradient at exactly 0 is 0, inputs are not modified), on the cases the course's API can express
and the course promises; `case_outside_api` sets the others aside, for both course APIs:

- float32 inputs: both courses allocate their outputs in float64 (``np.zeros(shape)``) and
  never test float32, so only the float64 cases are graded;
- ties in a max-pooling window, for maxpool2d_backward: neither course says which maximum
  gets the gradient (the deeplearning.ai notebook's own ``create_mask_from_window``,
  ``mask = (x == np.max(x))``, sends it to every one), so the tie cases are not graded;
- for ``deeplearning-ai`` only, non-square kernels: its API reads
  ``(f, f, n_C_prev, n_C) = W.shape``, so only square kernels are graded.

Each report says how many cases were set aside for the API, and why.

``cs231n``: Stanford CS231n's ``layers.py`` (NCHW, like the contract)
    =======================  ==========================================================
    contract function        course functions called
    =======================  ==========================================================
    conv2d_forward           ``conv_forward_naive(x, w, b, conv_param) -> (out, cache)``,
                             ``conv_param = {'stride': stride, 'pad': padding}``
    conv2d_backward          ``conv_forward_naive`` (for the cache, same inputs), then
                             ``conv_backward_naive(dout, cache) -> (dx, dw, db)``
    maxpool2d_forward        ``max_pool_forward_naive(x, pool_param) -> (out, cache)``,
                             ``pool_param = {'pool_height': size, 'pool_width': size,
                             'stride': stride}``
    maxpool2d_backward       ``max_pool_forward_naive``, then
                             ``max_pool_backward_naive(dout, cache) -> dx``
    relu_forward             ``relu_forward(x) -> (out, cache)``
    relu_backward            ``relu_forward``, then ``relu_backward(dout, cache) -> dx``
    linear_forward           ``affine_forward(x, w.T, b) -> (out, cache)``: the course's
                             ``w`` is ``(D, M)``, the contract's ``(M, D)``
    linear_backward          ``affine_forward``, then ``affine_backward(dout, cache) ->
                             (dx, dw, db)``; the course's ``dw`` ``(D, M)`` is transposed
    softmax_cross_entropy    ``softmax_loss(x, y) -> (loss, dx)``
    =======================  ==========================================================

    The ``_naive`` functions are graded. Where a file has no ``conv_forward_naive`` /
    ``conv_backward_naive`` pair (or ``max_pool_..._naive`` pair) but has the ``_fast`` one
    (``conv_forward_fast``, ``conv_backward_fast``, ``max_pool_forward_fast``,
    ``max_pool_backward_fast``), that pair is graded instead. The naive name wins because the
    course's ``_fast`` functions are the course's own (im2col in Cython), not the student's.
    A backward pass always gets the cache of the forward pass of its own pair.

``deeplearning-ai``: the channels-last notebook "Convolution model - Step by Step" (Coursera)
    =======================  ==========================================================
    conv2d_forward           ``conv_forward(A_prev, W, b, hparameters) -> (Z, cache)``,
                             ``A_prev (m, n_H, n_W, n_C)``, ``W (f, f, n_C_prev, n_C)``,
                             ``b (1, 1, 1, n_C)``, ``hparameters = {'stride', 'pad'}``
    conv2d_backward          ``conv_forward``, then ``conv_backward(dZ, cache) ->
                             (dA_prev, dW, db)``
    maxpool2d_forward        ``pool_forward(A_prev, hparameters, mode='max') -> (A, cache)``,
                             ``hparameters = {'f': size, 'stride': stride}``
    maxpool2d_backward       ``pool_forward``, then ``pool_backward(dA, cache, mode='max')``
    =======================  ==========================================================

    Arrays are moved between the contract's NCHW / ``(F, C, KH, KW)`` / ``(F,)`` layouts and the
    course's channels-last / ``(f, f, n_C_prev, n_C)`` / ``(1, 1, 1, n_C)`` ones on the way in
    and out. The notebook has no ReLU, dense layer or softmax: relu_forward, relu_backward,
    linear_forward, linear_backward and softmax_cross_entropy are "not graded" (not the
    student's omission), so such a submission is graded on 4 functions (no training run).

How the translation keeps the student's bugs and adds none:

- a backward pass gets its cache from the student's own forward function, called on the very
  inputs of the case (so a forward that raises makes its backward raise too, with that message);
- an array the course wants in another layout is handed over as a C-contiguous copy when the
  case's array is C-contiguous (what the course's own code would pass), or as a view keeping
  the case's strides otherwise (the memory-layout cases); any in-place change the student's code
  makes to such a copy is written back, so "modified its input" is still found;
- outputs are converted back only when they have the rank the course promises; anything else
  (None, a wrong rank, a missing tuple element) goes back as it is, to be reported as it is;
- a forward function that does not return the promised ``(out, cache)`` pair raises a
  ``TypeError`` naming the function, instead of being guessed at.

This module is checker code that runs inside the child process next to the student's code,
so it imports NumPy and the standard library only (the child cannot see this project); the
checker also imports it, for `API_NAMES`, `course_functions` and the tables above.
"""

import numpy as np

__all__ = [
    "API_NAMES",
    "REQUIRES",
    "ContractFunctions",
    "adapt",
    "case_outside_api",
    "contract_namespace",
    "course_functions",
    "missing_message",
    "suggest_api",
]

#: ``--api`` values; "tinycnn" is the contract itself (no adapter).
API_NAMES = ("tinycnn", "cs231n", "deeplearning-ai")

_CONTRACT = (
    "conv2d_forward",
    "conv2d_backward",
    "relu_forward",
    "relu_backward",
    "maxpool2d_forward",
    "maxpool2d_backward",
    "linear_forward",
    "linear_backward",
    "softmax_cross_entropy",
)

#: For each API and contract function, the sets of course functions that can provide it, in the
#: order they are tried (the first set the file defines completely is graded).
REQUIRES = {
    "tinycnn": {name: ((name,),) for name in _CONTRACT},
    "cs231n": {
        "conv2d_forward": (("conv_forward_naive",), ("conv_forward_fast",)),
        "conv2d_backward": (
            ("conv_forward_naive", "conv_backward_naive"),
            ("conv_forward_fast", "conv_backward_fast"),
        ),
        "maxpool2d_forward": (("max_pool_forward_naive",), ("max_pool_forward_fast",)),
        "maxpool2d_backward": (
            ("max_pool_forward_naive", "max_pool_backward_naive"),
            ("max_pool_forward_fast", "max_pool_backward_fast"),
        ),
        "relu_forward": (("relu_forward",),),
        "relu_backward": (("relu_forward", "relu_backward"),),
        "linear_forward": (("affine_forward",),),
        "linear_backward": (("affine_forward", "affine_backward"),),
        "softmax_cross_entropy": (("softmax_loss",),),
    },
    "deeplearning-ai": {
        "conv2d_forward": (("conv_forward",),),
        "conv2d_backward": (("conv_forward", "conv_backward"),),
        "maxpool2d_forward": (("pool_forward",),),
        "maxpool2d_backward": (("pool_forward", "pool_backward"),),
    },
}


def case_outside_api(api, function, case):
    """Why ``function`` is not graded on the contract's ``case`` through ``api``, in a few words
    (None if it is): what the course's API cannot express or the course does not promise (see
    the module's docstring). ``case`` is a :class:`tinycnn.parity_tests.cases.OpCase` (its
    ``op``, ``dtype``, ``w_shape`` and ``tags`` are read); the contract itself
    (``api="tinycnn"``) sets nothing aside.

    >>> from types import SimpleNamespace as Case
    >>> case_outside_api("cs231n", "relu_forward", Case(op="relu", dtype="float32", tags=()))
    'float32 input (the course allocates and tests float64 only)'
    >>> case_outside_api("tinycnn", "relu_forward", Case(op="relu", dtype="float32", tags=()))
    """
    if api == "tinycnn":
        return None
    if case.dtype != "float64":
        return "float32 input (the course allocates and tests float64 only)"
    if api == "deeplearning-ai" and case.op == "conv2d" and case.w_shape[2] != case.w_shape[3]:
        return "a non-square kernel (the course's W is (f, f, n_C_prev, n_C))"
    if function == "maxpool2d_backward" and "ties" in case.tags:
        return "a tie in a pooling window (the course sets no rule for which maximum gets it)"
    return None


def course_functions(api):
    """Every course function name the API uses (for finding the entry module of a folder)."""
    return sorted(
        {name for options in REQUIRES[api].values() for group in options for name in group}
    )


def missing_message(api, contract_name):
    """Why a contract function is missing from a file written against ``api``, in words."""
    options = REQUIRES[api].get(contract_name)
    if api == "tinycnn":
        return f"no function {contract_name} in the submission."
    if not options:
        return f"not part of the {api} API (its functions: {', '.join(course_functions(api))})."
    wanted = " or ".join(" and ".join(group) for group in options)
    return f"needs {wanted} (--api {api}); the submission does not define it."


def suggest_api(defined):
    """``--api NAME`` for a file whose functions (``defined``, names) fit a course's API best,
    or None (the file defines none of a course's functions)."""
    scores = {
        api: len(set(defined) & set(course_functions(api)) - set(_CONTRACT))
        for api in API_NAMES[1:]
    }
    best = max(scores, key=scores.get)
    return f"--api {best}" if scores[best] else None


def _describe(value):
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    return "None" if value is None else f"a {type(value).__name__}"


class _Arguments:
    """The case's arrays in the course's layout; in-place changes are written back at the end."""

    def __init__(self):
        self._copies = []

    def convert(self, array, to_course, to_contract):
        view = to_course(array)
        if not array.flags.c_contiguous:  # a memory-layout case: keep its strides
            return view
        course = np.ascontiguousarray(view)
        if np.may_share_memory(course, array):  # already a view: changes reach the case's array
            return course
        course.flags.writeable = array.flags.writeable
        self._copies.append((array, course, course.tobytes(), to_contract))
        return course

    def write_back(self):
        for array, course, pristine, to_contract in self._copies:
            if course.tobytes() != pristine:
                array[...] = to_contract(course)


def _forward_output(result, function):
    """``out`` of a course forward function that returns ``(out, cache)``."""
    if result is None:
        return None  # a stub (``pass``): reported as not implemented
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise TypeError(
            f"{function} must return a pair (out, cache), it returned {_describe(result)}"
        )
    return result[0]


def _cache_of(result, forward, backward):
    """The cache a course forward function returned, for its backward function."""
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise TypeError(
            f"{backward} needs the cache of {forward}, which must return a pair (out, cache); "
            f"it returned {_describe(result)}"
        )
    if result[1] is None:
        raise TypeError(
            f"{backward} needs the cache of {forward}, which returned None as its cache "
            f"(is {forward} implemented?)"
        )
    return result[1]


def _converted_back(value, ndim, to_contract):
    """A course output in the contract's layout, if it has the rank the course promises."""
    if isinstance(value, np.ndarray) and value.ndim == ndim:
        return to_contract(value)
    return value


def _transpose(value):
    return value.T


# -------------------------------------------------------------------------------------------
# cs231n
# -------------------------------------------------------------------------------------------


def _cs231n_conv_forward(name, forward):
    def conv2d_forward(x, w, b, stride=1, padding=0):
        return _forward_output(forward(x, w, b, {"stride": stride, "pad": padding}), name)

    return conv2d_forward


def _cs231n_conv_backward(forward_name, forward, backward_name, backward):
    def conv2d_backward(dy, x, w, b, stride=1, padding=0):
        result = forward(x, w, b, {"stride": stride, "pad": padding})
        return backward(dy, _cache_of(result, forward_name, backward_name))

    return conv2d_backward


def _pool_param(size, stride):
    return {"pool_height": size, "pool_width": size, "stride": stride}


def _cs231n_pool_forward(name, forward):
    def maxpool2d_forward(x, size=2, stride=2):
        return _forward_output(forward(x, _pool_param(size, stride)), name)

    return maxpool2d_forward


def _cs231n_pool_backward(forward_name, forward, backward_name, backward):
    def maxpool2d_backward(dy, x, size=2, stride=2):
        result = forward(x, _pool_param(size, stride))
        return backward(dy, _cache_of(result, forward_name, backward_name))

    return maxpool2d_backward


def _cs231n_relu_forward(name, forward):
    def relu_forward(x):
        return _forward_output(forward(x), name)

    return relu_forward


def _cs231n_relu_backward(forward_name, forward, backward_name, backward):
    def relu_backward(dy, x):
        return backward(dy, _cache_of(forward(x), forward_name, backward_name))

    return relu_backward


def _cs231n_linear_forward(name, forward):
    def linear_forward(x, w, b):
        arguments = _Arguments()
        try:
            w_course = arguments.convert(w, _transpose, _transpose)  # (M, D) -> (D, M)
            return _forward_output(forward(x, w_course, b), name)
        finally:
            arguments.write_back()

    return linear_forward


def _cs231n_linear_backward(forward_name, forward, backward_name, backward):
    def linear_backward(dy, x, w, b):
        arguments = _Arguments()
        try:
            w_course = arguments.convert(w, _transpose, _transpose)  # (M, D) -> (D, M)
            cache = _cache_of(forward(x, w_course, b), forward_name, backward_name)
            result = backward(dy, cache)
        finally:
            arguments.write_back()
        if isinstance(result, (tuple, list)) and len(result) == 3:
            dx, dw, db = result
            return (dx, _converted_back(dw, 2, _transpose), db)  # dw (D, M) -> (M, D)
        return result

    return linear_backward


def _cs231n_softmax(name, loss_function):
    def softmax_cross_entropy(logits, labels):
        return loss_function(logits, labels)

    return softmax_cross_entropy


_CS231N_WRAPPERS = {
    "conv2d_forward": _cs231n_conv_forward,
    "conv2d_backward": _cs231n_conv_backward,
    "maxpool2d_forward": _cs231n_pool_forward,
    "maxpool2d_backward": _cs231n_pool_backward,
    "relu_forward": _cs231n_relu_forward,
    "relu_backward": _cs231n_relu_backward,
    "linear_forward": _cs231n_linear_forward,
    "linear_backward": _cs231n_linear_backward,
    "softmax_cross_entropy": _cs231n_softmax,
}


def _cs231n(functions):
    """Contract functions built from CS231n's (``functions``: name -> the student's object).

    Returns contract name -> ``(wrapper, graded course name, the student's object)``.
    """
    built = {}
    for contract_name, make in _CS231N_WRAPPERS.items():
        for group in REQUIRES["cs231n"][contract_name]:
            if all(name in functions for name in group):
                arguments = [item for name in group for item in (name, functions[name])]
                built[contract_name] = (make(*arguments), group[-1], functions[group[-1]])
                break
    return built


# -------------------------------------------------------------------------------------------
# deeplearning.ai, "Convolution model - Step by Step" (channels last)
# -------------------------------------------------------------------------------------------


def _nhwc(array):  # (N, C, H, W) -> (N, H, W, C)
    return array.transpose(0, 2, 3, 1)


def _nchw(array):  # (N, H, W, C) -> (N, C, H, W)
    return array.transpose(0, 3, 1, 2)


def _kernel_course(w):  # (F, C, KH, KW) -> (KH, KW, C, F)
    return w.transpose(2, 3, 1, 0)


def _kernel_contract(w):  # (KH, KW, C, F) -> (F, C, KH, KW)
    return w.transpose(3, 2, 0, 1)


def _bias_course(b):  # (F,) -> (1, 1, 1, F)
    return b.reshape(1, 1, 1, -1)


def _bias_contract(b):  # (1, 1, 1, F) -> (F,)
    return b.reshape(-1)


def _conv_arguments(arguments, x, w, b):
    return (
        arguments.convert(x, _nhwc, _nchw),
        arguments.convert(w, _kernel_course, _kernel_contract),
        arguments.convert(b, _bias_course, _bias_contract),
    )


def _dlai_conv_forward(forward):
    def conv2d_forward(x, w, b, stride=1, padding=0):
        arguments = _Arguments()
        try:
            A_prev, W, b_course = _conv_arguments(arguments, x, w, b)
            result = forward(A_prev, W, b_course, {"stride": stride, "pad": padding})
        finally:
            arguments.write_back()
        return _converted_back(_forward_output(result, "conv_forward"), 4, _nchw)

    return conv2d_forward


def _dlai_conv_backward(forward, backward):
    def conv2d_backward(dy, x, w, b, stride=1, padding=0):
        arguments = _Arguments()
        try:
            A_prev, W, b_course = _conv_arguments(arguments, x, w, b)
            result = forward(A_prev, W, b_course, {"stride": stride, "pad": padding})
            cache = _cache_of(result, "conv_forward", "conv_backward")
            grads = backward(arguments.convert(dy, _nhwc, _nchw), cache)
        finally:
            arguments.write_back()
        if not (isinstance(grads, (tuple, list)) and len(grads) == 3):
            return grads
        dA_prev, dW, db = grads
        if isinstance(db, np.ndarray) and db.ndim == 4 and db.shape[:3] == (1, 1, 1):
            db = _bias_contract(db)  # (1, 1, 1, F) -> (F,)
        return (_converted_back(dA_prev, 4, _nchw), _converted_back(dW, 4, _kernel_contract), db)

    return conv2d_backward


def _dlai_pool_forward(forward):
    def maxpool2d_forward(x, size=2, stride=2):
        arguments = _Arguments()
        try:
            A_prev = arguments.convert(x, _nhwc, _nchw)
            result = forward(A_prev, {"f": size, "stride": stride}, mode="max")
        finally:
            arguments.write_back()
        return _converted_back(_forward_output(result, "pool_forward"), 4, _nchw)

    return maxpool2d_forward


def _dlai_pool_backward(forward, backward):
    def maxpool2d_backward(dy, x, size=2, stride=2):
        arguments = _Arguments()
        try:
            A_prev = arguments.convert(x, _nhwc, _nchw)
            result = forward(A_prev, {"f": size, "stride": stride}, mode="max")
            cache = _cache_of(result, "pool_forward", "pool_backward")
            dA_prev = backward(arguments.convert(dy, _nhwc, _nchw), cache, mode="max")
        finally:
            arguments.write_back()
        return _converted_back(dA_prev, 4, _nchw)

    return maxpool2d_backward


_DLAI_WRAPPERS = {
    "conv2d_forward": _dlai_conv_forward,
    "conv2d_backward": _dlai_conv_backward,
    "maxpool2d_forward": _dlai_pool_forward,
    "maxpool2d_backward": _dlai_pool_backward,
}


def _deeplearning_ai(functions):
    """Contract functions built from the notebook's (``functions``: name -> the object)."""
    built = {}
    for contract_name, make in _DLAI_WRAPPERS.items():
        [group] = REQUIRES["deeplearning-ai"][contract_name]
        if all(name in functions for name in group):
            wrapper = make(*(functions[name] for name in group))
            built[contract_name] = (wrapper, group[-1], functions[group[-1]])
    return built


_BUILDERS = {"cs231n": _cs231n, "deeplearning-ai": _deeplearning_ai}


def adapt(api, student):
    """The contract functions a student module provides through ``api``.

    Parameters
    ----------
    api : str
        One of `API_NAMES`.
    student : module
        The student's imported module.

    Returns
    -------
    dict
        Contract name -> ``(function, course_name)`` for every contract function the module
        provides. When the course function that would be graded exists but is not callable, the
        entry holds that object itself (so the checker reports "not a function"), not a wrapper.
    """
    if api == "tinycnn":
        return {
            name: (getattr(student, name), name)
            for name in _CONTRACT
            if getattr(student, name, None) is not None
        }
    names = course_functions(api)
    present = {
        name: getattr(student, name) for name in names if getattr(student, name, None) is not None
    }
    built = _BUILDERS[api](present)
    adapted = {}
    for contract_name, (function, course_name, original) in built.items():
        adapted[contract_name] = (function if callable(original) else original, course_name)
    return adapted


class ContractFunctions:
    """The contract functions an adapter built, as attributes (what the parity harness calls)."""

    def __init__(self, functions):
        self.__dict__.update(functions)


def contract_namespace(api, student):
    """What the child grades: ``(namespace, graded_as)`` for a student module and ``api``.

    ``namespace`` has one attribute per contract function the module provides through ``api``
    (see `adapt`); ``graded_as`` maps each to the course function graded. The child calls this
    right after importing the student's module, and grades ``namespace`` like a contract file.
    """
    adapted = adapt(api, student)
    functions = {name: function for name, (function, _) in adapted.items()}
    return ContractFunctions(functions), {name: course for name, (_, course) in adapted.items()}
