//! Building blocks of the OpenAPI document shared by the API and the
//! portal (feature `openapi`): what a problem response looks like, and how
//! a response is added to an operation that may already declare the status
//! with another media type.

use utoipa::openapi::path::Operation;
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response, ResponseBuilder};

use crate::PROBLEM_CONTENT_TYPE;

/// The media type and schema of every error body.
pub fn problem_content() -> Content {
    Content::new(Some(Ref::from_schema_name("Problem")))
}

/// A response with a problem body.
pub fn problem_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_CONTENT_TYPE, problem_content())
        .build()
}

/// Adds `media_type` with `content` to the operation's response `status`.
/// A status not declared yet gets `response` (or a reference to it); one
/// declared inline gets the media type beside its own, and `description`
/// appended; one that refers to a component is left as it is.
pub fn add_response(
    operation: &mut Operation,
    status: &str,
    response: impl FnOnce() -> RefOr<Response>,
    media_type: &str,
    content: impl FnOnce() -> Content,
    description: &str,
) {
    match operation.responses.responses.get_mut(status) {
        None => {
            operation.responses.responses.insert(status.to_owned(), response());
        }
        Some(RefOr::T(existing)) if !existing.content.contains_key(media_type) => {
            existing.content.insert(media_type.to_owned(), RefOr::T(content()));
            if !existing.description.contains(description) {
                existing.description = format!("{}; {description}", existing.description);
            }
        }
        Some(_) => {}
    }
}

/// Every operation of the document with its path and method.
pub fn operations_mut(doc: &mut OpenApi) -> impl Iterator<Item = (&str, &'static str, &mut Operation)> {
    doc.paths.paths.iter_mut().flat_map(|(path, item)| {
        [
            ("get", item.get.as_mut()),
            ("put", item.put.as_mut()),
            ("post", item.post.as_mut()),
            ("delete", item.delete.as_mut()),
            ("patch", item.patch.as_mut()),
            ("head", item.head.as_mut()),
            ("options", item.options.as_mut()),
            ("trace", item.trace.as_mut()),
        ]
        .into_iter()
        .filter_map(move |(method, operation)| operation.map(|op| (path.as_str(), method, op)))
    })
}
