//! Capture names used in grammars/**/references.scm. Each is defined once here; a test checks that
//! every query uses only these.

pub const IMPORT: &str = "tl.import";
pub const IMPORT_FROM: &str = "tl.import.from";
pub const SCOPE: &str = "tl.scope";
pub const SCOPE_CLASS: &str = "tl.scope.class";
pub const BINDING: &str = "tl.binding";
pub const BINDING_DEFINITION: &str = "tl.binding.definition";
pub const BINDING_GLOBAL: &str = "tl.binding.global";
pub const CHAIN: &str = "tl.chain";
pub const NAME: &str = "tl.name";
pub const INCLUDE: &str = "tl.include";
pub const QUALIFIED: &str = "tl.qualified";
pub const CALL_DISCARDED: &str = "tl.call.discarded";
pub const FUNCTION: &str = "tl.function";
pub const QUALIFIER: &str = "tl.qualifier";
pub const LAUNCH: &str = "tl.launch";
pub const LAUNCH_KERNEL: &str = "tl.launch.kernel";
pub const LAUNCH_CONFIG: &str = "tl.launch.config";
pub const MACRO: &str = "tl.macro";
pub const DEFINITION: &str = "tl.definition";
pub const LAMBDA: &str = "tl.lambda";

pub const CHAIN_INNER: &str = "tl.chain.inner";
pub const NAME_SKIP: &str = "tl.name.skip";
pub const USE_CALL: &str = "tl.use.call";
pub const USE_DECORATOR: &str = "tl.use.decorator";
pub const QUALIFIED_INNER: &str = "tl.qualified.inner";

pub const ALL: &[&str] = &[
    IMPORT,
    IMPORT_FROM,
    SCOPE,
    SCOPE_CLASS,
    BINDING,
    BINDING_DEFINITION,
    BINDING_GLOBAL,
    CHAIN,
    NAME,
    INCLUDE,
    QUALIFIED,
    CALL_DISCARDED,
    FUNCTION,
    QUALIFIER,
    LAUNCH,
    LAUNCH_KERNEL,
    LAUNCH_CONFIG,
    MACRO,
    DEFINITION,
    LAMBDA,
    CHAIN_INNER,
    NAME_SKIP,
    USE_CALL,
    USE_DECORATOR,
    QUALIFIED_INNER,
];
