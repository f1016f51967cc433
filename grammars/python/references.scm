; What Python recognition looks at. Captures arrive in document order; the Rust side
; (server/src/recognize/python.rs) resolves names through imports and scopes.

; Imports: the Rust side reads their fields (module, names, aliases, wildcard).
(import_statement) @tl.import
(import_from_statement) @tl.import.from

; Scopes. Python resolves names per function (and lambda, comprehension); class bodies
; do not enclose the methods defined in them, hence a capture of their own.
(function_definition) @tl.scope
(lambda) @tl.scope
(list_comprehension) @tl.scope
(set_comprehension) @tl.scope
(dictionary_comprehension) @tl.scope
(generator_expression) @tl.scope
(class_definition) @tl.scope.class

; Names bound in the enclosing scope by a definition.
(function_definition name: (identifier) @tl.binding.definition)
(class_definition name: (identifier) @tl.binding.definition)

; Names bound in the current scope. A local binding hides an imported module of the same name.
(parameters (identifier) @tl.binding)
(default_parameter name: (identifier) @tl.binding)
(typed_parameter (identifier) @tl.binding)
(typed_default_parameter name: (identifier) @tl.binding)
(list_splat_pattern (identifier) @tl.binding)
(dictionary_splat_pattern (identifier) @tl.binding)
(lambda_parameters (identifier) @tl.binding)
(assignment left: (identifier) @tl.binding)
(assignment left: (pattern_list (identifier) @tl.binding))
(assignment left: (tuple_pattern (identifier) @tl.binding))
(assignment left: (list_pattern (identifier) @tl.binding))
(augmented_assignment left: (identifier) @tl.binding)
(for_statement left: (identifier) @tl.binding)
(for_statement left: (pattern_list (identifier) @tl.binding))
(for_statement left: (tuple_pattern (identifier) @tl.binding))
(for_in_clause left: (identifier) @tl.binding)
(for_in_clause left: (pattern_list (identifier) @tl.binding))
(for_in_clause left: (tuple_pattern (identifier) @tl.binding))
(as_pattern_target (identifier) @tl.binding)
(named_expression name: (identifier) @tl.binding)
(global_statement (identifier) @tl.binding.global)
(nonlocal_statement (identifier) @tl.binding.global)

; Uses: attribute chains and plain names.
(attribute) @tl.chain
(identifier) @tl.name

; Context for uses, so that no node has to look up its parent (which costs a walk from the root).
; Inner parts of a chain are handled with the outermost attribute.
(attribute object: (attribute) @tl.chain.inner)
; Names that are not values: attribute names, chain roots (handled by their chain), keyword argument
; names, and the parts of import statements.
(attribute attribute: (identifier) @tl.name.skip)
(attribute object: (identifier) @tl.name.skip)
(keyword_argument name: (identifier) @tl.name.skip)
(dotted_name (identifier) @tl.name.skip)
(aliased_import alias: (identifier) @tl.name.skip)
; Roles: called, or decorating (with or without a call).
(call function: (_) @tl.use.call)
(decorator (_) @tl.use.decorator)
(decorator (call function: (_) @tl.use.decorator))
