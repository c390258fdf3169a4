//! What Shopify charges for a GraphQL document and what it refuses before running one, by the
//! rules Shopify publishes for the Admin API (they hold for the pinned [`super::API_VERSION`]):
//! the requested and the actual query cost, the single-query maximum, the page size of a
//! connection and the size of an input array. Each rule names its source where it is applied.
//!
//! This is the provider's side, for the loopback sandbox (`jobctl`'s) and the tests: the client
//! never uses it (a stub that shared the client's assumptions would pass a wrong one twice), so it
//! is compiled only with the `shopify-cost` feature.
//!
//! The rules need no schema: a field without a selection is a scalar or an enum; a field with a
//! selection and a `first` or `last` argument, or one selecting `nodes`, `edges` or `pageInfo`, is
//! a connection; any other field with a selection is an object.
//!
//! Sources, read for this module (Shopify publishes one current text for every version):
//! - [RATE-LIMITS]: "GraphQL Admin API rate limits", <https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits>,
//!   "Cost calculation": "Every field in the schema has an integer cost value assigned to it";
//!   by what a field returns, Scalar 0, Enum 0, Object 1, Interface and Union "Maximum of
//!   possible selections", Connection "Sized by first and last arguments", Mutation 10.
//! - [CALL-LIMIT]: "Call limit", <https://help.shopify.com/en/api/graphql-admin-api/call-limit>:
//!   "A single query to the API cannot exceed a cost of 1000. This limit is enforced before query
//!   execution begins, and is therefore based on the requested cost of the query rather than the
//!   actual cost", and "The actual cost is based on the results returned, since the query can
//!   end early due to an object type field returning null, or connection fields can return fewer
//!   edges than requested."
//! - [ENGINEERING]: Shopify Engineering, "Rate Limiting GraphQL APIs by Calculating Query
//!   Complexity", <https://shopify.engineering/rate-limiting-graphql-apis-calculating-query-complexity>:
//!   objects one point, scalars and enums zero, "connections: two points plus the number of
//!   returned objects", mutations ten points.
//! - [PAGINATION]: "Paginating results with GraphQL", <https://shopify.dev/docs/api/usage/pagination-graphql>:
//!   "You can retrieve up to a maximum of 250 resources."
//! - [LIMITS]: "Shopify API limits", <https://shopify.dev/docs/api/usage/limits>, "Input limits":
//!   "Input arguments that accept an array have a maximum size of 250 for all APIs. Requests
//!   return an error if an input array exceeds 250 items." (since API version 2020-01: changelog
//!   "GraphQL input objects limited to 250 items").

use apollo_parser::{
    Parser,
    cst::{self, CstNode},
};
use serde_json::{Map, Value, json};

/// The most a document may request: [CALL-LIMIT], "A single query to the API cannot exceed a
/// cost of 1000", checked on the requested cost before execution.
pub const SINGLE_QUERY_MAX_COST: u64 = 1_000;

/// The most `first` or `last` may ask of a connection: [PAGINATION], "up to a maximum of 250
/// resources".
pub const MAX_PAGE_SIZE: u64 = 250;

/// The most items an input array may hold: [LIMITS], "Input limits", 250 for all APIs.
pub const MAX_INPUT_ARRAY: usize = 250;

/// A connection's own cost: [ENGINEERING], "two points plus the number of returned objects"
/// (the rate-limits page sizes a connection "by first and last arguments"). The two points
/// cover the connection and its `pageInfo`; `edges`, `cursor` and `pageInfo` add nothing.
const CONNECTION: u64 = 2;
/// An object: [RATE-LIMITS], Object 1 (each node of a connection is one).
const OBJECT: u64 = 1;
/// A mutation's field: [RATE-LIMITS], Mutation 10, whatever its payload selects.
const MUTATION: u64 = 10;
/// How deep fragments may nest in one another before the document is refused.
const FRAGMENT_DEPTH: usize = 32;

/// Why Shopify refuses a document before running it; [`Refusal::answer`] is its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The text is not GraphQL, or names no operation to run.
    Invalid {
        /// What is wrong.
        message: String,
    },
    /// A connection without `first` or `last`.
    MissingPageSize {
        /// The field's response path.
        path: Vec<String>,
        /// Its position (line, column, from 1).
        location: (usize, usize),
    },
    /// `first` or `last` over [`MAX_PAGE_SIZE`].
    PageTooLarge {
        /// `first` or `last`.
        argument: String,
        /// What it asked.
        size: i64,
        /// The field's response path.
        path: Vec<String>,
        /// Its position (line, column, from 1).
        location: (usize, usize),
    },
    /// An input array over [`MAX_INPUT_ARRAY`] items.
    InputArrayTooLarge {
        /// How many items it held.
        size: usize,
        /// The field's response path, then the argument and the input fields to the array.
        path: Vec<String>,
        /// The field's position (line, column, from 1).
        location: (usize, usize),
    },
    /// A requested cost over [`SINGLE_QUERY_MAX_COST`].
    MaxCostExceeded {
        /// The requested cost.
        cost: u64,
    },
}

impl Refusal {
    /// Shopify's answer, with HTTP 200: `{"errors": [...]}`.
    pub fn answer(&self) -> Value {
        let located = |message: String, path: &[String], (line, column): (usize, usize), code: &str| {
            json!({"message": message, "locations": [{"line": line, "column": column}], "path": path,
                   "extensions": {"code": code}})
        };
        let error = match self {
            Self::Invalid { message } => json!({"message": message}),
            // As Shopify answers it in its own API library's tests (Shopify/shopify-api-js,
            // lib/clients/graphql/__tests__/graphql_client.test.ts), with the BAD_REQUEST code
            // current versions add.
            Self::MissingPageSize { path, location } => {
                located("you must provide one of first or last".into(), path, *location, "BAD_REQUEST")
            }
            // Shopify's text for `first: 251`, as measured against shops and quoted by public
            // connectors' documentation (there is no page of Shopify's own that prints it).
            Self::PageTooLarge { argument, path, location, .. } => located(
                format!(
                    "{argument} cannot exceed {MAX_PAGE_SIZE}. To query larger amounts of data with fewer \
                     limits, bulk operations should be used instead."
                ),
                path,
                *location,
                "BAD_REQUEST",
            ),
            // [LIMITS] says only that such a request "return[s] an error"; the text and code are
            // Shopify's answer as public Admin API emulators record it.
            Self::InputArrayTooLarge { size, path, location } => located(
                format!(
                    "The input array size of {size} is greater than the maximum allowed of {MAX_INPUT_ARRAY}."
                ),
                path,
                *location,
                "MAX_INPUT_SIZE_EXCEEDED",
            ),
            // Shopify's answer, as recorded from the API by client libraries' tests: the message
            // (with its links) and `extensions` with the code, the cost and the maximum.
            Self::MaxCostExceeded { cost } => json!({
                "message": format!(
                    "Query cost is {cost}, which exceeds the single query max cost limit \
                     ({SINGLE_QUERY_MAX_COST}).\n\nSee https://shopify.dev/concepts/about-apis/rate-limits \
                     for more information on how the\ncost of a query is calculated.\n\nTo query larger \
                     amounts of data with fewer limits, bulk operations should be used instead.\nSee \
                     https://shopify.dev/tutorials/perform-bulk-operations-with-admin-api for usage \
                     details.\n"
                ),
                "extensions": {"code": "MAX_COST_EXCEEDED", "cost": cost, "maxCost": SINGLE_QUERY_MAX_COST,
                               "documentation": "https://shopify.dev/api/usage/limits#rate-limits"},
            }),
        };
        json!({"errors": [error]})
    }
}

/// A document Shopify would run: its requested cost, and what it needs to price an answer.
#[derive(Debug, Clone)]
pub struct Analysis {
    requested: u64,
    root: Selection,
    mutation: bool,
    pages: Vec<(Vec<String>, u64)>,
}

impl Analysis {
    /// The requested cost: what the bucket must hold before the document runs ([CALL-LIMIT]).
    pub fn requested_cost(&self) -> u64 {
        self.requested
    }

    /// The actual cost of answering with `data` (the answer's `data`): the same rules over what
    /// was returned, so a null object costs nothing and a connection is charged the nodes it
    /// returned ([CALL-LIMIT], "Requested and actual cost").
    pub fn actual_cost(&self, data: &Value) -> u64 {
        if self.mutation {
            return self.root.fields().map(|_| MUTATION).sum();
        }
        self.root.actual(data)
    }

    /// The page size (`first` or `last`) of the first connection whose response key is `key`
    /// (`webhookSubscriptions`), for a sandbox to answer with at most that many nodes.
    pub fn page_size(&self, key: &str) -> Option<u64> {
        self.pages.iter().find(|(path, _)| path.last().is_some_and(|k| k == key)).map(|(_, size)| *size)
    }
}

/// Parses `source`, picks the operation (`operation_name`, or the only one), and checks what
/// Shopify checks before running it: each connection's page size and each input array (the
/// first over its limit in the document's order is the refusal), then the requested cost
/// against the single-query maximum.
///
/// # Errors
/// The first [`Refusal`], which [`Refusal::answer`] renders as Shopify does.
pub fn analyze(source: &str, operation_name: Option<&str>, variables: &Value) -> Result<Analysis, Refusal> {
    let tree = Parser::new(source).parse();
    if let Some(error) = tree.errors().next() {
        let (line, column) = position(source, error.index());
        return Err(Refusal::Invalid {
            message: format!("syntax error, {} at [{line}, {column}]", error.message()),
        });
    }
    let document = tree.document();
    let mut operations = Vec::new();
    let mut fragments = Vec::new();
    for definition in document.definitions() {
        match definition {
            cst::Definition::OperationDefinition(operation) => operations.push(operation),
            cst::Definition::FragmentDefinition(fragment) => {
                if let Some(name) = fragment.fragment_name().and_then(|n| n.name()) {
                    fragments.push((name.text().to_string(), fragment));
                }
            }
            _ => {}
        }
    }
    let operation = match operation_name {
        Some(wanted) => operations
            .into_iter()
            .find(|o| o.name().is_some_and(|n| n.text() == wanted))
            .ok_or_else(|| Refusal::Invalid { message: format!("No operation named \"{wanted}\"") })?,
        None if operations.len() == 1 => operations.remove(0),
        None => {
            return Err(Refusal::Invalid {
                message: "An operation name is required when the document has several operations".into(),
            });
        }
    };
    let mutation = operation.operation_type().is_some_and(|t| t.mutation_token().is_some());
    let mut reader = Reader {
        source,
        variables: variables.as_object().cloned().unwrap_or_default(),
        fragments,
        pages: Vec::new(),
        refusal: None,
    };
    for definition in operation.variable_definitions().iter().flat_map(|d| d.variable_definitions()) {
        let name = definition.variable().and_then(|v| v.name()).map(|n| n.text().to_string());
        let default = definition.default_value().and_then(|d| d.value());
        if let (Some(name), Some(default)) = (name, default)
            && !reader.variables.contains_key(&name)
        {
            let value = reader.literal(default);
            reader.variables.insert(name, value);
        }
    }
    let root = match operation.selection_set() {
        Some(set) => reader.selection(set, &[], 0),
        None => Selection::default(),
    };
    if let Some(refusal) = reader.refusal {
        return Err(refusal);
    }
    let requested = if mutation { root.fields().map(|_| MUTATION).sum() } else { root.requested() };
    if requested > SINGLE_QUERY_MAX_COST {
        return Err(Refusal::MaxCostExceeded { cost: requested });
    }
    Ok(Analysis { requested, root, mutation, pages: reader.pages })
}

/// A selection set: its fields, and the fields of fragments on a type (inline or named).
#[derive(Debug, Clone, Default)]
struct Selection {
    fields: Vec<(String, Field)>,
    on_type: Vec<(String, Selection)>,
}

#[derive(Debug, Clone)]
enum Field {
    /// A scalar or an enum: [RATE-LIMITS], 0.
    Leaf,
    /// An object: [RATE-LIMITS], 1 and what it selects.
    Object(Selection),
    /// A connection of `size` nodes (`first` or `last`): 2 and `size` times a node, a node being
    /// an object and what it selects under `nodes` or `edges { node }` (the dearer, when both).
    Connection { size: u64, nodes: Option<Selection>, edges: Option<Selection> },
}

impl Selection {
    fn fields(&self) -> impl Iterator<Item = &(String, Field)> {
        self.fields.iter().chain(self.on_type.iter().flat_map(|(_, s)| s.fields.iter()))
    }

    /// The fields, and of the fragments on one type and another the dearest ([RATE-LIMITS],
    /// Interface and Union: "Maximum of possible selections").
    fn requested(&self) -> u64 {
        let own: u64 = self.fields.iter().map(|(_, f)| f.requested()).sum();
        let mut by_type: Vec<(&str, u64)> = Vec::new();
        for (ty, selection) in &self.on_type {
            let cost = selection.requested();
            match by_type.iter_mut().find(|(t, _)| *t == ty) {
                Some((_, total)) => *total += cost,
                None => by_type.push((ty, cost)),
            }
        }
        own + by_type.iter().map(|(_, c)| *c).max().unwrap_or(0)
    }

    /// What was returned in `data` (an object), each response key counted once.
    fn actual(&self, data: &Value) -> u64 {
        let mut seen = Vec::new();
        let mut total = 0;
        for (key, field) in self.fields() {
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            total += data.get(key).map_or(0, |value| field.actual(value));
        }
        total
    }
}

impl Field {
    fn requested(&self) -> u64 {
        match self {
            Self::Leaf => 0,
            Self::Object(selection) => OBJECT + selection.requested(),
            Self::Connection { size, nodes, edges } => {
                let node = |s: &Option<Selection>| s.as_ref().map_or(0, |s| OBJECT + s.requested());
                CONNECTION + size * node(nodes).max(node(edges))
            }
        }
    }

    fn actual(&self, value: &Value) -> u64 {
        match (self, value) {
            (_, Value::Null) | (Self::Leaf, _) => 0,
            // A list of objects outside a connection is priced as one object.
            (Self::Object(selection), Value::Array(items)) => {
                OBJECT + items.iter().map(|item| selection.actual(item)).max().unwrap_or(0)
            }
            (Self::Object(selection), _) => OBJECT + selection.actual(value),
            (Self::Connection { nodes, edges, .. }, _) => {
                let items =
                    |key: &str| value.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
                let of_nodes: u64 = nodes.as_ref().map_or(0, |s| {
                    items("nodes").iter().filter(|n| !n.is_null()).map(|n| OBJECT + s.actual(n)).sum()
                });
                let of_edges: u64 = edges.as_ref().map_or(0, |s| {
                    items("edges")
                        .iter()
                        .filter(|e| !e.is_null())
                        .map(|e| OBJECT + s.actual(&e["node"]))
                        .sum()
                });
                CONNECTION + of_nodes.max(of_edges)
            }
        }
    }
}

/// Walks an operation: resolves variables, keeps each connection's page size, and the first
/// refusal met.
struct Reader<'a> {
    source: &'a str,
    variables: Map<String, Value>,
    fragments: Vec<(String, cst::FragmentDefinition)>,
    pages: Vec<(Vec<String>, u64)>,
    refusal: Option<Refusal>,
}

impl Reader<'_> {
    fn refuse(&mut self, refusal: Refusal) {
        self.refusal.get_or_insert(refusal);
    }

    fn selection(&mut self, set: cst::SelectionSet, path: &[String], depth: usize) -> Selection {
        let mut selection = Selection::default();
        if depth > FRAGMENT_DEPTH {
            self.refuse(Refusal::Invalid { message: "Fragments nest too deep".into() });
            return selection;
        }
        for item in set.selections() {
            match item {
                cst::Selection::Field(field) => {
                    if let Some(read) = self.field(field, path, depth) {
                        selection.fields.push(read);
                    }
                }
                cst::Selection::InlineFragment(fragment) => {
                    let ty = fragment.type_condition().and_then(|t| t.named_type()).and_then(|t| t.name());
                    let inner = fragment.selection_set().map(|s| self.selection(s, path, depth + 1));
                    let inner = inner.unwrap_or_default();
                    match ty {
                        Some(ty) => selection.on_type.push((ty.text().to_string(), inner)),
                        None => {
                            selection.fields.extend(inner.fields);
                            selection.on_type.extend(inner.on_type);
                        }
                    }
                }
                cst::Selection::FragmentSpread(spread) => {
                    let name = spread.fragment_name().and_then(|n| n.name()).map(|n| n.text().to_string());
                    let definition = name
                        .as_deref()
                        .and_then(|name| self.fragments.iter().find(|(n, _)| n == name))
                        .map(|(_, d)| d.clone());
                    let Some(definition) = definition else {
                        self.refuse(Refusal::Invalid {
                            message: format!(
                                "Fragment {} was used, but not defined",
                                name.unwrap_or_default()
                            ),
                        });
                        continue;
                    };
                    let ty = definition.type_condition().and_then(|t| t.named_type()).and_then(|t| t.name());
                    let inner = definition.selection_set().map(|s| self.selection(s, path, depth + 1));
                    selection.on_type.push((
                        ty.map(|t| t.text().to_string()).unwrap_or_default(),
                        inner.unwrap_or_default(),
                    ));
                }
            }
        }
        selection
    }

    fn field(&mut self, field: cst::Field, path: &[String], depth: usize) -> Option<(String, Field)> {
        let name = field.name()?.text().to_string();
        let key = field.alias().and_then(|a| a.name()).map_or_else(|| name.clone(), |a| a.text().to_string());
        let mut here = path.to_vec();
        here.push(key.clone());
        let start = usize::from(field.syntax().text_range().start());
        let location = position(self.source, start);
        let mut arguments = Map::new();
        for argument in field.arguments().iter().flat_map(|a| a.arguments()) {
            let (Some(name), Some(value)) = (argument.name(), argument.value()) else { continue };
            let value = self.literal(value);
            arguments.insert(name.text().to_string(), value);
        }
        for (argument, value) in &arguments {
            let mut at = here.clone();
            at.push(argument.clone());
            self.arrays(value, &mut at, location);
        }
        let Some(set) = field.selection_set() else { return Some((key, Field::Leaf)) };
        let selects = |wanted: &str| {
            set.selections().any(
                |s| matches!(s, cst::Selection::Field(f) if f.name().is_some_and(|n| n.text() == wanted)),
            )
        };
        let sized = ["first", "last"]
            .iter()
            .find_map(|a| arguments.get(*a).filter(|v| !v.is_null()).map(|v| (*a, v)));
        let is_connection = sized.is_some() || selects("nodes") || selects("edges") || selects("pageInfo");
        if !is_connection {
            return Some((key, Field::Object(self.selection(set, &here, depth))));
        }
        let size = match sized {
            None => {
                self.refuse(Refusal::MissingPageSize { path: here.clone(), location });
                0
            }
            Some((argument, value)) => {
                let size = value.as_i64().unwrap_or(0);
                if size > MAX_PAGE_SIZE as i64 {
                    self.refuse(Refusal::PageTooLarge {
                        argument: argument.to_owned(),
                        size,
                        path: here.clone(),
                        location,
                    });
                }
                size.max(0) as u64
            }
        };
        self.pages.push((here.clone(), size));
        let (mut nodes, mut edges) = (None, None);
        for item in set.selections() {
            let cst::Selection::Field(inner) = item else { continue };
            let Some(inner_name) = inner.name().map(|n| n.text().to_string()) else { continue };
            let inner_key = inner
                .alias()
                .and_then(|a| a.name())
                .map_or_else(|| inner_name.clone(), |a| a.text().to_string());
            let mut at = here.clone();
            at.push(inner_key);
            match (inner_name.as_str(), inner.selection_set()) {
                ("nodes", Some(s)) => nodes = Some(self.selection(s, &at, depth)),
                ("edges", Some(s)) => {
                    let mut node = Selection::default();
                    for edge_item in s.selections() {
                        let cst::Selection::Field(edge_field) = edge_item else { continue };
                        if edge_field.name().is_some_and(|n| n.text() == "node")
                            && let Some(node_set) = edge_field.selection_set()
                        {
                            let mut node_path = at.clone();
                            node_path.push("node".into());
                            let read = self.selection(node_set, &node_path, depth);
                            node.fields.extend(read.fields);
                            node.on_type.extend(read.on_type);
                        }
                    }
                    edges = Some(node);
                }
                // `pageInfo` and anything else a connection answers are in its two points.
                _ => {}
            }
        }
        Some((key, Field::Connection { size, nodes, edges }))
    }

    /// Refuses the first array over [`MAX_INPUT_ARRAY`] items in an argument's value.
    fn arrays(&mut self, value: &Value, path: &mut Vec<String>, location: (usize, usize)) {
        match value {
            Value::Array(items) => {
                if items.len() > MAX_INPUT_ARRAY {
                    self.refuse(Refusal::InputArrayTooLarge {
                        size: items.len(),
                        path: path.clone(),
                        location,
                    });
                }
                for item in items {
                    self.arrays(item, path, location);
                }
            }
            Value::Object(fields) => {
                for (name, inner) in fields {
                    path.push(name.clone());
                    self.arrays(inner, path, location);
                    path.pop();
                }
            }
            _ => {}
        }
    }

    /// A literal or a variable, as JSON (a variable not given is null).
    fn literal(&self, value: cst::Value) -> Value {
        match value {
            cst::Value::Variable(variable) => {
                let name = variable.name().map(|n| n.text().to_string()).unwrap_or_default();
                self.variables.get(&name).cloned().unwrap_or(Value::Null)
            }
            cst::Value::StringValue(string) => Value::String(String::from(&string)),
            cst::Value::IntValue(int) => {
                int.int_token().and_then(|t| t.text().parse::<i64>().ok()).map_or(Value::Null, Value::from)
            }
            cst::Value::FloatValue(float) => float
                .float_token()
                .and_then(|t| t.text().parse::<f64>().ok())
                .map_or(Value::Null, Value::from),
            cst::Value::BooleanValue(boolean) => bool::try_from(&boolean).map_or(Value::Null, Value::Bool),
            cst::Value::NullValue(_) => Value::Null,
            cst::Value::EnumValue(value) => {
                value.name().map_or(Value::Null, |n| Value::String(n.text().to_string()))
            }
            cst::Value::ListValue(list) => Value::Array(list.values().map(|v| self.literal(v)).collect()),
            cst::Value::ObjectValue(object) => Value::Object(
                object
                    .object_fields()
                    .filter_map(|f| Some((f.name()?.text().to_string(), self.literal(f.value()?))))
                    .collect(),
            ),
        }
    }
}

/// Line and column (from 1) of a byte offset.
fn position(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cost(source: &str, variables: Value) -> Result<u64, Refusal> {
        analyze(source, None, &variables).map(|a| a.requested_cost())
    }

    #[test]
    fn scalars_cost_nothing_objects_one_connections_two_and_their_nodes() {
        assert_eq!(cost("{ shop { name currencyCode } }", json!({})), Ok(1));
        assert_eq!(cost("{ products(first: 10) { edges { node { title } } } }", json!({})), Ok(12));
        assert_eq!(
            cost("{ products(first: 10) { pageInfo { hasNextPage } nodes { id } } }", json!({})),
            Ok(12)
        );
        // 2 + 250 × (1 + 2 + 100) and the shop: the products query this client used to send.
        let wide = "query P($first: Int!) { shop { currencyCode } products(first: $first) {
            nodes { id variants(first: 100) { nodes { id } } } } }";
        assert_eq!(cost(wide, json!({"first": 250})), Err(Refusal::MaxCostExceeded { cost: 25_753 }));
        assert_eq!(
            cost("mutation { tagsAdd(id: \"x\", tags: [\"a\"]) { userErrors { message } } }", json!({})),
            Ok(10)
        );
    }

    #[test]
    fn variables_defaults_and_fragments_are_priced() {
        let source = "query Q($n: Int = 5) { products(last: $n) { nodes { ...P } } }
            fragment P on Product { id featuredMedia { id } }";
        assert_eq!(cost(source, json!({})), Ok(2 + 5 * 2));
        assert_eq!(cost(source, json!({"n": 7})), Ok(2 + 7 * 2));
        let union = "{ node(id: \"x\") { ... on Product { id seo { title } } ... on Collection { image { id } seo { title } } } }";
        assert_eq!(cost(union, json!({})), Ok(1 + 2), "the dearer of the possible types");
    }

    #[test]
    fn the_actual_cost_counts_what_was_returned() {
        let source =
            "{ shop { id } products(first: 10) { nodes { id variants(first: 5) { nodes { id } } } } }";
        let analysis = analyze(source, None, &json!({})).unwrap();
        assert_eq!(analysis.requested_cost(), 1 + 2 + 10 * (1 + 2 + 5));
        let data = json!({"shop": null, "products": {"nodes": [
            {"id": "1", "variants": {"nodes": [{"id": "a"}, {"id": "b"}]}},
            {"id": "2", "variants": {"nodes": []}}]}});
        assert_eq!(analysis.actual_cost(&data), 2 + (1 + 2 + 2) + (1 + 2));
        assert_eq!(analysis.page_size("variants"), Some(5));
    }

    #[test]
    fn limits_are_refused_at_one_past_them() {
        assert!(cost("{ products(first: 250) { nodes { id } } }", json!({})).is_ok());
        let err = cost("{ products(first: 251) { nodes { id } } }", json!({})).unwrap_err();
        assert!(
            matches!(&err, Refusal::PageTooLarge { size: 251, path, location: (1, 3), .. } if path == &["products"]),
            "{err:?}"
        );
        let tags = |n: usize| json!({"tags": (0..n).map(|i| i.to_string()).collect::<Vec<_>>()});
        let add =
            "mutation A($tags: [String!]!) { tagsAdd(id: \"x\", tags: $tags) { userErrors { message } } }";
        assert_eq!(cost(add, tags(250)), Ok(10));
        let err = cost(add, tags(251)).unwrap_err();
        assert!(
            matches!(&err, Refusal::InputArrayTooLarge { size: 251, path, .. } if path == &["tagsAdd", "tags"]),
            "{err:?}"
        );
        assert!(matches!(
            cost("{ products { nodes { id } } }", json!({})),
            Err(Refusal::MissingPageSize { .. })
        ));
        assert!(matches!(cost("{ products(first: ", json!({})), Err(Refusal::Invalid { .. })));
    }
}
