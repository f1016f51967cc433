//! LSP glue: the only place that knows tower-lsp and LSP types. Handlers convert, call one `ide`
//! function and convert back.

pub mod capabilities;
pub mod ext;
pub mod from_proto;
mod kernels;
pub mod server;
pub mod to_proto;
mod transport;

pub use server::Server;

/// Serves LSP on stdin/stdout until the client exits.
pub async fn serve_stdio() {
    crate::panics::install();
    let (service, socket) = tower_lsp_server::LspService::build(Server::new)
        .custom_method(ext::SEARCH_CATALOG, Server::search_catalog)
        .custom_method(ext::VIEW_FILE_TEXT, Server::view_file_text)
        .custom_method(ext::KERNEL_TIMINGS, Server::kernel_timings)
        .finish();
    tower_lsp_server::Server::new(transport::client_messages(), tokio::io::stdout(), socket)
        .serve(transport::AnswerEveryRequest(service))
        .await;
}
