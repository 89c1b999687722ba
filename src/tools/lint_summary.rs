//! The module summary `lint_code` returns beside ruff's findings (`functions`, `classes`,
//! `imports`, `complexity`, `function_complexity`), computed on the host from ruff's own
//! Python parser: linting parses and never runs the code, so it needs no sandbox, and a
//! parse here costs microseconds where a fresh guest costs milliseconds.
//!
//! The semantics are the old platform's (and the guest's, `sandbox/guest/sandgraph_guest/
//! lint.py`, which `tests/lint_summary.rs` compares this with file by file):
//! * `functions` and `classes`: names in `ast.walk` order (breadth first, fields in
//!   CPython's order; an `elif` is an `If` nested in the `orelse` of the one before, an
//!   `except` clause and a `case` a node between a statement and its body);
//! * `imports`: `import x.y` gives `x`, `from x import y` gives `y`, in source order,
//!   without repeats;
//! * `complexity`: the decision points (`if`/`elif`, `for`, `while`, `with`, `try`,
//!   `except`, `and`/`or` chains; async forms included) plus max(number of functions, 1);
//! * `function_complexity`: mccabe 0.7's `PathGraphingAstVisitor` (methods as
//!   `Class.method`, a closure counted in its enclosing function, a module-level `if` or
//!   loop as its own `If N`/`Loop N` entry, `finally` and `match` bodies not walked),
//!   sorted by line.
//!
//! Code that does not parse has the empty summary (complexity 1).
//!
//! Deeply nested code (`-(-(-(...)))`, long attribute chains) makes deep trees; the
//! parse, the walks and the tree's drop run on a stack sized for the code's length
//! ([`stacker`]), so no input can overflow the server's stack.

use std::collections::{HashMap, VecDeque};

use ruff_python_ast::visitor::{self, Visitor};
use ruff_python_ast::{ElifElseClause, ExceptHandler, Expr, MatchCase, Stmt};
use ruff_python_parser::parse_module;
use ruff_text_size::{Ranged, TextSize};

use super::lint::{FunctionComplexity, SyntaxErrorInfo};

/// The summary of a module that parses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    /// Every function and method name, `ast.walk` order.
    pub functions: Vec<String>,
    /// Every class name, `ast.walk` order.
    pub classes: Vec<String>,
    /// Imported names (see the module docs).
    pub imports: Vec<String>,
    /// Decision points plus max(functions, 1).
    pub complexity: u32,
    /// mccabe per function (and per module-level branch), by line.
    pub function_complexity: Vec<FunctionComplexity>,
}

/// Stack the summary may use per byte of code (each nesting level takes at least one).
const STACK_PER_BYTE: usize = 1024;
/// Stack kept free below the summary's frames.
const STACK_RED_ZONE: usize = 256 << 10;

/// Summarise `code`, or say where it fails to parse (ruff's parser's message).
pub fn summarize(code: &str) -> Result<Summary, SyntaxErrorInfo> {
    let needed = STACK_RED_ZONE + code.len().saturating_mul(STACK_PER_BYTE);
    stacker::maybe_grow(needed, needed, || summarize_here(code))
}

fn summarize_here(code: &str) -> Result<Summary, SyntaxErrorInfo> {
    let lines = LineIndex::new(code);
    let parsed = match parse_module(code) {
        Ok(parsed) => parsed,
        Err(error) => {
            let (line, column) = lines.position(code, error.location.start());
            return Err(SyntaxErrorInfo {
                line: Some(line),
                column: Some(column),
                message: error.error.to_string(),
            });
        }
    };
    let body = &parsed.syntax().body;
    let (functions, classes) = walk_definitions(body);
    let mut counter = Counter::default();
    counter.visit_body(body);
    let mut imports: Vec<String> = Vec::new();
    // Statements are visited in source order already; sort to be sure, as the guest does.
    counter.imports.sort_by_key(|(at, _)| *at);
    for (_, name) in counter.imports {
        if !imports.contains(&name) {
            imports.push(name);
        }
    }
    let complexity = counter
        .branches
        .saturating_add(u32::try_from(functions.len().max(1)).unwrap_or(u32::MAX));
    let mut mccabe = McCabe::new(&lines);
    mccabe.dispatch_list(Block::Stmts(body));
    let mut function_complexity: Vec<FunctionComplexity> =
        mccabe.graphs.into_iter().map(|(_, graph)| graph).collect();
    function_complexity.sort_by_key(|f| f.line);
    Ok(Summary {
        functions,
        classes,
        imports,
        complexity,
        function_complexity,
    })
}

/// Line starts, for 1-based lines and columns (characters) of byte offsets.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(code: &str) -> Self {
        let bytes = code.as_bytes();
        let mut starts = vec![0];
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\n' => starts.push(i + 1),
                b'\r' if bytes.get(i + 1) != Some(&b'\n') => starts.push(i + 1),
                _ => {}
            }
            i += 1;
        }
        Self { starts }
    }

    fn line(&self, offset: TextSize) -> u32 {
        let offset = offset.to_usize();
        let line = self.starts.partition_point(|&start| start <= offset);
        u32::try_from(line).unwrap_or(u32::MAX)
    }

    fn position(&self, code: &str, offset: TextSize) -> (u32, u32) {
        let line = self.line(offset);
        let start = self.starts[(line as usize).saturating_sub(1)];
        let end = offset.to_usize().min(code.len());
        let column = code.get(start..end).map_or(0, |text| text.chars().count());
        (line, u32::try_from(column + 1).unwrap_or(u32::MAX))
    }
}

/// A node of CPython's tree that can hold statements.
#[derive(Clone, Copy)]
enum Node<'a> {
    Stmt(&'a Stmt),
    /// An `elif` clause: CPython's `If` in the `orelse` of the previous one, with the
    /// clauses after it as its own `orelse`.
    Elif(&'a ElifElseClause, &'a [ElifElseClause]),
    Handler(&'a ExceptHandler),
    Case(&'a MatchCase),
}

/// CPython's `orelse` of an `if` whose remaining `elif`/`else` clauses are `clauses`.
fn orelse<'a>(clauses: &'a [ElifElseClause], out: &mut VecDeque<Node<'a>>) {
    if let Some((first, rest)) = clauses.split_first() {
        if first.test.is_some() {
            out.push_back(Node::Elif(first, rest));
        } else {
            out.extend(first.body.iter().map(Node::Stmt));
        }
    }
}

/// Function and class names in `ast.walk` order: breadth first, children in field order.
/// Expressions hold no statements, so only statement-holding nodes are queued.
fn walk_definitions(body: &[Stmt]) -> (Vec<String>, Vec<String>) {
    let (mut functions, mut classes) = (Vec::new(), Vec::new());
    let mut queue: VecDeque<Node<'_>> = body.iter().map(Node::Stmt).collect();
    while let Some(node) = queue.pop_front() {
        match node {
            Node::Stmt(stmt) => match stmt {
                Stmt::FunctionDef(f) => {
                    functions.push(f.name.id.to_string());
                    queue.extend(f.body.iter().map(Node::Stmt));
                }
                Stmt::ClassDef(c) => {
                    classes.push(c.name.id.to_string());
                    queue.extend(c.body.iter().map(Node::Stmt));
                }
                Stmt::For(s) => {
                    queue.extend(s.body.iter().map(Node::Stmt));
                    queue.extend(s.orelse.iter().map(Node::Stmt));
                }
                Stmt::While(s) => {
                    queue.extend(s.body.iter().map(Node::Stmt));
                    queue.extend(s.orelse.iter().map(Node::Stmt));
                }
                Stmt::If(s) => {
                    queue.extend(s.body.iter().map(Node::Stmt));
                    orelse(&s.elif_else_clauses, &mut queue);
                }
                Stmt::With(s) => queue.extend(s.body.iter().map(Node::Stmt)),
                Stmt::Match(s) => queue.extend(s.cases.iter().map(Node::Case)),
                Stmt::Try(s) => {
                    queue.extend(s.body.iter().map(Node::Stmt));
                    queue.extend(s.handlers.iter().map(Node::Handler));
                    queue.extend(s.orelse.iter().map(Node::Stmt));
                    queue.extend(s.finalbody.iter().map(Node::Stmt));
                }
                _ => {}
            },
            Node::Elif(clause, rest) => {
                queue.extend(clause.body.iter().map(Node::Stmt));
                orelse(rest, &mut queue);
            }
            Node::Handler(ExceptHandler::ExceptHandler(h)) => {
                queue.extend(h.body.iter().map(Node::Stmt));
            }
            Node::Case(case) => queue.extend(case.body.iter().map(Node::Stmt)),
        }
    }
    (functions, classes)
}

/// Decision points and imports, over the whole tree.
#[derive(Default)]
struct Counter {
    branches: u32,
    imports: Vec<(TextSize, String)>,
}

impl<'a> Visitor<'a> for Counter {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        match stmt {
            Stmt::If(s) => {
                let elifs = s.elif_else_clauses.iter().filter(|c| c.test.is_some());
                self.branches = self
                    .branches
                    .saturating_add(1 + u32::try_from(elifs.count()).unwrap_or(u32::MAX));
            }
            Stmt::For(_) | Stmt::While(_) | Stmt::With(_) | Stmt::Try(_) => {
                self.branches = self.branches.saturating_add(1);
            }
            Stmt::Import(s) => {
                for alias in &s.names {
                    let name = alias.name.id.as_str();
                    let top = name.split('.').next().unwrap_or(name);
                    self.imports.push((s.start(), top.to_owned()));
                }
            }
            Stmt::ImportFrom(s) => {
                for alias in &s.names {
                    self.imports.push((s.start(), alias.name.id.to_string()));
                }
            }
            _ => {}
        }
        visitor::walk_stmt(self, stmt);
    }

    fn visit_except_handler(&mut self, handler: &'a ExceptHandler) {
        self.branches = self.branches.saturating_add(1);
        visitor::walk_except_handler(self, handler);
    }

    fn visit_expr(&mut self, expr: &'a Expr) {
        if let Expr::BoolOp(_) = expr {
            self.branches = self.branches.saturating_add(1);
        }
        visitor::walk_expr(self, expr);
    }
}

/// A list of statements as mccabe sees it.
#[derive(Clone, Copy)]
enum Block<'a> {
    Stmts(&'a [Stmt]),
    /// The `orelse` of an `if` whose remaining clauses are these.
    Clauses(&'a [ElifElseClause]),
}

impl Block<'_> {
    fn is_empty(&self) -> bool {
        match self {
            Block::Stmts(list) => list.is_empty(),
            Block::Clauses(list) => list.is_empty(),
        }
    }
}

/// mccabe's path graph: node id -> the ids it leads to (`None` is mccabe's `None` tail).
struct Graph {
    entity: String,
    line: u32,
    nodes: HashMap<Option<usize>, Vec<usize>>,
}

impl Graph {
    fn connect(&mut self, from: Option<usize>, to: usize) {
        self.nodes.entry(from).or_default().push(to);
        // mccabe: "Ensure that the destination node is always counted."
        self.nodes.insert(Some(to), Vec::new());
    }

    fn complexity(&self) -> u32 {
        let edges: usize = self.nodes.values().map(Vec::len).sum();
        let complexity = edges as i64 - self.nodes.len() as i64 + 2;
        u32::try_from(complexity).unwrap_or(0)
    }
}

/// mccabe 0.7's `PathGraphingAstVisitor`, statement for statement.
struct McCabe<'l> {
    lines: &'l LineIndex,
    classname: String,
    /// By key (`Class.method`, `If 12`), in first-insertion order (a Python dict).
    graphs: Vec<(String, FunctionComplexity)>,
    graph: Option<Graph>,
    tail: Option<usize>,
    next_node: usize,
}

impl<'l> McCabe<'l> {
    fn new(lines: &'l LineIndex) -> Self {
        Self {
            lines,
            classname: String::new(),
            graphs: Vec::new(),
            graph: None,
            tail: None,
            next_node: 0,
        }
    }

    fn new_node(&mut self) -> usize {
        self.next_node += 1;
        self.next_node
    }

    fn store_graph(&mut self, key: String) {
        if let Some(graph) = self.graph.take() {
            let entry = FunctionComplexity {
                name: graph.entity.clone(),
                line: graph.line,
                complexity: graph.complexity(),
            };
            match self.graphs.iter_mut().find(|(k, _)| *k == key) {
                Some((_, slot)) => *slot = entry,
                None => self.graphs.push((key, entry)),
            }
        }
        self.tail = None;
    }

    fn append_path_node(&mut self) -> Option<usize> {
        self.tail?;
        let node = self.new_node();
        if let Some(graph) = &mut self.graph {
            graph.connect(self.tail, node);
        }
        self.tail = Some(node);
        Some(node)
    }

    fn dispatch_list(&mut self, block: Block<'_>) {
        match block {
            Block::Stmts(list) => {
                for stmt in list {
                    self.dispatch(stmt);
                }
            }
            Block::Clauses(clauses) => {
                if let Some((first, rest)) = clauses.split_first() {
                    if first.test.is_some() {
                        let line = self.lines.line(first.start());
                        self.subgraph(
                            line,
                            format!("If {line}"),
                            Block::Stmts(&first.body),
                            &[],
                            Block::Clauses(rest),
                        );
                    } else {
                        self.dispatch_list(Block::Stmts(&first.body));
                    }
                }
            }
        }
    }

    fn dispatch(&mut self, stmt: &Stmt) {
        let line = self.lines.line(stmt.start());
        match stmt {
            Stmt::FunctionDef(f) => {
                let entity = format!("{}{}", self.classname, f.name.id);
                if self.graph.is_some() {
                    // A closure: part of the enclosing function's graph.
                    let pathnode = self.append_path_node();
                    self.tail = pathnode;
                    self.dispatch_list(Block::Stmts(&f.body));
                    let bottom = self.new_node();
                    let tail = self.tail;
                    if let Some(graph) = &mut self.graph {
                        graph.connect(tail, bottom);
                        graph.connect(pathnode, bottom);
                    }
                    self.tail = Some(bottom);
                } else {
                    self.graph = Some(Graph {
                        entity: entity.clone(),
                        line: self.lines.line(f.name.start()),
                        nodes: HashMap::new(),
                    });
                    let pathnode = self.new_node();
                    self.tail = Some(pathnode);
                    self.dispatch_list(Block::Stmts(&f.body));
                    self.store_graph(entity);
                }
            }
            Stmt::ClassDef(c) => {
                let saved = self.classname.clone();
                self.classname.push_str(&c.name.id);
                self.classname.push('.');
                self.dispatch_list(Block::Stmts(&c.body));
                self.classname = saved;
            }
            Stmt::For(s) => self.subgraph(
                line,
                format!("Loop {line}"),
                Block::Stmts(&s.body),
                &[],
                Block::Stmts(&s.orelse),
            ),
            Stmt::While(s) => self.subgraph(
                line,
                format!("Loop {line}"),
                Block::Stmts(&s.body),
                &[],
                Block::Stmts(&s.orelse),
            ),
            Stmt::If(s) => self.subgraph(
                line,
                format!("If {line}"),
                Block::Stmts(&s.body),
                &[],
                Block::Clauses(&s.elif_else_clauses),
            ),
            // `try*` has no visitor in mccabe: a simple statement.
            Stmt::Try(s) if !s.is_star => {
                let handlers: Vec<&[Stmt]> = s
                    .handlers
                    .iter()
                    .map(|ExceptHandler::ExceptHandler(h)| h.body.as_slice())
                    .collect();
                self.subgraph(
                    line,
                    format!("TryExcept {line}"),
                    Block::Stmts(&s.body),
                    &handlers,
                    Block::Stmts(&s.orelse),
                );
            }
            Stmt::With(s) => {
                self.append_path_node();
                self.dispatch_list(Block::Stmts(&s.body));
            }
            _ => {
                self.append_path_node();
            }
        }
    }

    fn subgraph(
        &mut self,
        line: u32,
        name: String,
        body: Block<'_>,
        extra: &[&[Stmt]],
        orelse: Block<'_>,
    ) {
        if self.graph.is_none() {
            // A module-level (or class-level) branch: a graph of its own.
            let key = format!("{}{name}", self.classname);
            self.graph = Some(Graph {
                entity: name,
                line,
                nodes: HashMap::new(),
            });
            let pathnode = self.new_node();
            self.subgraph_parse(Some(pathnode), body, extra, orelse);
            self.store_graph(key);
        } else {
            let pathnode = self.append_path_node();
            self.subgraph_parse(pathnode, body, extra, orelse);
        }
    }

    fn subgraph_parse(
        &mut self,
        pathnode: Option<usize>,
        body: Block<'_>,
        extra: &[&[Stmt]],
        orelse: Block<'_>,
    ) {
        let mut loose_ends = Vec::new();
        self.tail = pathnode;
        self.dispatch_list(body);
        loose_ends.push(self.tail);
        for block in extra {
            self.tail = pathnode;
            self.dispatch_list(Block::Stmts(block));
            loose_ends.push(self.tail);
        }
        if orelse.is_empty() {
            loose_ends.push(pathnode);
        } else {
            self.tail = pathnode;
            self.dispatch_list(orelse);
            loose_ends.push(self.tail);
        }
        if pathnode.is_some() {
            let bottom = self.new_node();
            if let Some(graph) = &mut self.graph {
                for end in loose_ends {
                    graph.connect(end, bottom);
                }
            }
            self.tail = Some(bottom);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[FunctionComplexity]) -> Vec<(String, u32, u32)> {
        list.iter()
            .map(|f| (f.name.clone(), f.line, f.complexity))
            .collect()
    }

    #[test]
    fn walk_order_is_breadth_first_like_ast_walk() {
        let code = "def outer():\n    def inner():\n        pass\n\nclass K:\n    def m(self):\n        pass\n\ndef last():\n    pass\n";
        let s = summarize(code).unwrap();
        assert_eq!(s.functions, ["outer", "last", "inner", "m"]);
        assert_eq!(s.classes, ["K"]);
    }

    #[test]
    fn elif_and_boolops_count_like_the_guest() {
        let code = "if a:\n    pass\nelif b and c or d:\n    pass\nelse:\n    pass\n";
        let s = summarize(code).unwrap();
        // two Ifs, two BoolOps, max(0 functions, 1)
        assert_eq!(s.complexity, 5);
        assert_eq!(names(&s.function_complexity), [("If 1".to_owned(), 1, 3)]);
    }

    #[test]
    fn imports_keep_the_old_semantics() {
        let code = "import os.path, sys\nfrom x import y as z, w\nimport os\n";
        assert_eq!(summarize(code).unwrap().imports, ["os", "sys", "y", "w"]);
    }

    #[test]
    fn methods_closures_and_decorators() {
        let code = "class A:\n    @staticmethod\n    def m(x):\n        def c():\n            if x:\n                return 1\n        return c\n";
        let s = summarize(code).unwrap();
        assert_eq!(names(&s.function_complexity), [("A.m".to_owned(), 3, 3)]);
    }

    #[test]
    fn a_syntax_error_says_where() {
        let err = summarize("x = 1\ndef f(:\n").unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(!err.message.is_empty());
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let depth = 200_000;
        let code = format!("x = {}1{}\n", "-(".repeat(depth), ")".repeat(depth));
        // On a small thread stack, like a runtime worker's.
        let handle = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || summarize(&code).map(|s| s.complexity))
            .unwrap();
        assert_eq!(handle.join().unwrap(), Ok(1));
        let chain = format!("x = a{}\n", ".b".repeat(depth));
        let handle = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || summarize(&chain).map(|s| s.complexity))
            .unwrap();
        assert_eq!(handle.join().unwrap(), Ok(1));
    }
}
