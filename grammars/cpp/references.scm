; What C and C++ recognition looks at (server/src/recognize/c_family.rs). CUDA inherits this file.

(preproc_include path: (system_lib_string) @tl.include)
(preproc_include path: (string_literal) @tl.include)

; Names that may be catalog functions, types, constants or built-ins.
(identifier) @tl.name
(type_identifier) @tl.name

; `ns::name` and deeper: looked up whole, else by namespace root. Only the outermost counts, and the
; names inside it are not looked up on their own.
(qualified_identifier) @tl.qualified
(qualified_identifier name: (qualified_identifier) @tl.qualified.inner)
(qualified_identifier name: (identifier) @tl.name.skip)
(qualified_identifier name: (type_identifier) @tl.name.skip)

; Called names (so no node has to look up its parent, which costs a walk from the root).
(call_expression function: (_) @tl.use.call)

; A call whose value is dropped: for status-returning APIs this ignores an error.
(expression_statement (call_expression) @tl.call.discarded)

; Function definitions: kernels are the ones marked __global__.
(function_definition) @tl.function

; Macro definitions: the body is raw text to tree-sitter, so c_family.rs scans it for calls; the
; name, like a function's below, is one the file defines itself.
(preproc_function_def) @tl.macro
(preproc_def) @tl.macro
(preproc_params (identifier) @tl.name.skip)

; Functions the file defines itself: a call of that name is the file's, not the catalog's. Only
; definitions: a prototype redeclares the catalog's function, and `dim3 blockDim(n);` in a host
; function parses as one.
(function_definition declarator: (function_declarator declarator: (identifier) @tl.definition))
(function_definition declarator: (_ declarator: (function_declarator declarator: (identifier) @tl.definition)))

; Lambdas: `[=] __device__ (int i) { ... }` is device code wherever it is written.
(lambda_expression) @tl.lambda
