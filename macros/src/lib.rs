//! The procedural macro behind `exampple_core::xml!`: the XML template is parsed when the
//! program is compiled, and the macro expands to code that builds the `Element` directly,
//! with every interpolated value put in a text node or an attribute value as data.
//!
//! Use it through `exampple_core::xml!` (or `exampple::xml!`), which passes the path of the
//! core crate in; the generated code names only items of `exampple_core::__private`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::HashMap;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::{Expr, Ident, LitStr, Token};

mod template;

use template::{ArgRef, Content, Element, Hole, Ns, Piece};

/// Expands `(core_path) "template", args...` into an expression of type `Element`.
///
/// Not meant to be called directly: use `exampple_core::xml!`.
#[proc_macro]
pub fn xml_impl(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let input = syn::parse_macro_input!(input as Input);
    match expand(input) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

struct Arg {
    name: Option<Ident>,
    expr: Expr,
}

struct Input {
    krate: TokenStream,
    template: LitStr,
    args: Vec<Arg>,
}

impl Parse for Input {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let krate;
        syn::parenthesized!(krate in input);
        let krate: TokenStream = krate.parse()?;
        if input.is_empty() {
            return Err(input.error("xml!: expected a template, e.g. xml!(\"<presence/>\")"));
        }
        let template: LitStr = input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "xml!: the template must be a string literal; for XML built at run time use xml::parse, which returns a Result",
            )
        })?;
        let mut args = Vec::new();
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            let name = if input.peek(Ident) && input.peek2(Token![=]) && !input.peek2(Token![==]) {
                let name: Ident = input.parse()?;
                input.parse::<Token![=]>()?;
                Some(name)
            } else {
                None
            };
            let expr: Expr = input.parse()?;
            args.push(Arg { name, expr });
        }
        Ok(Input {
            krate,
            template,
            args,
        })
    }
}

/// A value the expansion evaluates once: an argument or a captured variable.
struct Slot {
    /// The expression (a captured variable is an identifier spanned at the template).
    expr: TokenStream,
    /// Uses that insert the value as it is (elements or text, by its type).
    child_uses: usize,
    /// Uses through `Display` or a format spec (attributes, spec'd text).
    other_uses: usize,
    /// The argument's span, for "never used"; `None` for a captured variable.
    span: Option<Span>,
    /// The name of a named argument or a captured variable.
    named: Option<String>,
}

struct Gen<'a> {
    krate: &'a TokenStream,
    template: &'a LitStr,
    slots: Vec<Slot>,
    /// Named arguments and captures: name to slot.
    names: HashMap<String, usize>,
    positional: usize,
}

fn expand(input: Input) -> syn::Result<TokenStream> {
    let text = input.template.value();
    let root = template::parse(&text)
        .map_err(|e| syn::Error::new(input.template.span(), e.describe(&text)))?;
    let mut slots = Vec::new();
    let mut names = HashMap::new();
    let mut positional = 0;
    for arg in &input.args {
        let expr = &arg.expr;
        match &arg.name {
            Some(name) => {
                let key = name.to_string();
                if names.contains_key(&key) {
                    return Err(syn::Error::new(
                        name.span(),
                        format!("xml!: the argument `{key}` is named twice"),
                    ));
                }
                names.insert(key.clone(), slots.len());
                slots.push(Slot {
                    expr: quote!(#expr),
                    child_uses: 0,
                    other_uses: 0,
                    span: Some(name.span()),
                    named: Some(key),
                });
            }
            None => {
                if !names.is_empty() {
                    return Err(syn::Error::new_spanned(
                        expr,
                        "xml!: positional arguments must come before named ones",
                    ));
                }
                positional += 1;
                slots.push(Slot {
                    expr: quote!(#expr),
                    child_uses: 0,
                    other_uses: 0,
                    span: Some(syn::spanned::Spanned::span(expr)),
                    named: None,
                });
            }
        }
    }
    let mut r#gen = Gen {
        krate: &input.krate,
        template: &input.template,
        slots,
        names,
        positional,
    };
    r#gen.count_element(&root)?;
    for slot in &r#gen.slots {
        if slot.child_uses + slot.other_uses == 0 {
            let message = match &slot.named {
                Some(name) => format!("xml!: the named argument `{name}` is never used"),
                None => "xml!: this argument is never used".to_string(),
            };
            return Err(syn::Error::new(
                slot.span.unwrap_or_else(|| r#gen.template.span()),
                message,
            ));
        }
    }
    let body = r#gen.element(&root);
    let krate = r#gen.krate;
    let traits = quote! {
        #[allow(unused_imports)]
        use #krate::__private::{ElementKind as _, IterKind as _, TextKind as _};
    };
    if r#gen.slots.is_empty() {
        return Ok(quote! {{ #traits #body }});
    }
    let mut values = Vec::new();
    let mut binds = Vec::new();
    for (i, slot) in r#gen.slots.iter().enumerate() {
        let expr = &slot.expr;
        // An argument inserted once as it is moves in (an Element without a copy, an
        // iterator consumed); a captured variable and any other value are borrowed, as
        // format! does.
        let captured = slot.span.is_none();
        values.push(
            if !captured && slot.child_uses == 1 && slot.other_uses == 0 {
                quote!(#expr)
            } else {
                quote!(&(#expr))
            },
        );
        binds.push(format_ident!("__xml_a{}", i, span = Span::mixed_site()));
    }
    Ok(quote! {
        match (#(#values,)*) {
            (#(#binds,)*) => { #traits #body }
        }
    })
}

impl Gen<'_> {
    fn slot(&mut self, hole: &Hole) -> syn::Result<usize> {
        match &hole.arg {
            ArgRef::Index(i) => {
                if *i < self.slots.len() && self.slots[*i].span.is_some() {
                    Ok(*i)
                } else {
                    let count = self.positional
                        + self
                            .slots
                            .iter()
                            .filter(|s| s.named.is_some() && s.span.is_some())
                            .count();
                    Err(syn::Error::new(
                        self.template.span(),
                        format!(
                            "xml!: the template needs argument {} (counting from 1) but {count} argument{} given",
                            i + 1,
                            if count == 1 { " is" } else { "s are" }
                        ),
                    ))
                }
            }
            ArgRef::Name(name) => {
                if let Some(&i) = self.names.get(name) {
                    return Ok(i);
                }
                let ident = Ident::new(name, self.template.span());
                self.names.insert(name.clone(), self.slots.len());
                self.slots.push(Slot {
                    expr: quote!(#ident),
                    child_uses: 0,
                    other_uses: 0,
                    span: None,
                    named: Some(name.clone()),
                });
                Ok(self.slots.len() - 1)
            }
        }
    }

    fn count_pieces(&mut self, pieces: &[Piece]) -> syn::Result<()> {
        for piece in pieces {
            if let Piece::Hole(hole) = piece {
                let i = self.slot(hole)?;
                self.slots[i].other_uses += 1;
            }
        }
        Ok(())
    }

    fn count_element(&mut self, el: &Element) -> syn::Result<()> {
        for decl in &el.decls {
            self.count_pieces(&decl.value)?;
        }
        for attr in &el.attrs {
            self.count_pieces(&attr.value)?;
        }
        for child in &el.children {
            match child {
                Content::Text(_) => {}
                Content::Element(e) => self.count_element(e)?,
                Content::Hole(hole) => {
                    let i = self.slot(hole)?;
                    if hole.spec.is_empty() {
                        self.slots[i].child_uses += 1;
                    } else {
                        self.slots[i].other_uses += 1;
                    }
                }
            }
        }
        Ok(())
    }

    fn bind(&self, hole: &Hole) -> Ident {
        let i = match &hole.arg {
            ArgRef::Index(i) => *i,
            ArgRef::Name(name) => self.names[name],
        };
        format_ident!("__xml_a{}", i, span = Span::mixed_site())
    }

    /// `format_args!` of a hole with its spec.
    fn format(&self, hole: &Hole) -> TokenStream {
        let value = self.bind(hole);
        let fmt = LitStr::new(&format!("{{:{}}}", hole.spec), self.template.span());
        quote!(::core::format_args!(#fmt, #value))
    }

    /// An expression of type `String` for an attribute value.
    fn value(&self, pieces: &[Piece]) -> TokenStream {
        let krate = self.krate;
        if let [Piece::Lit(s)] = pieces {
            return quote!(::std::string::String::from(#s));
        }
        let s = Ident::new("__xml_s", Span::mixed_site());
        let parts = pieces.iter().map(|piece| match piece {
            Piece::Lit(text) => quote!(#s.push_str(#text);),
            Piece::Hole(hole) => {
                let args = self.format(hole);
                quote!(#krate::__private::write_display(&mut #s, #args);)
            }
        });
        quote!({
            let mut #s = ::std::string::String::new();
            #(#parts)*
            #s
        })
    }

    fn ns(&self, ns: &Ns) -> TokenStream {
        let krate = self.krate;
        match ns {
            Ns::Component => quote!(#krate::ns::COMPONENT),
            Ns::Const(s) => quote!(#s),
            Ns::Dynamic(id) => {
                let var = format_ident!("__xml_ns{}", id, span = Span::mixed_site());
                quote!(&*#var)
            }
        }
    }

    fn element(&self, el: &Element) -> TokenStream {
        let krate = self.krate;
        let e = Ident::new("__xml_e", Span::mixed_site());
        let decls = el.decls.iter().map(|decl| {
            let var = format_ident!("__xml_ns{}", decl.id, span = Span::mixed_site());
            let value = self.value(&decl.value);
            quote!(let #var: ::std::string::String = #value;)
        });
        let name = &el.name;
        let ns = self.ns(&el.ns);
        let attrs = el.attrs.iter().map(|attr| {
            let name = &attr.name;
            let value = self.value(&attr.value);
            match &attr.ns {
                None => quote!(#krate::__private::attr(&mut #e, #name, #value);),
                Some(ns) => {
                    let ns = self.ns(ns);
                    quote!(#krate::__private::attr_ns(&mut #e, #ns, #name, #value);)
                }
            }
        });
        let children = el.children.iter().map(|child| match child {
            Content::Text(text) => quote!(#e.append_text(#text);),
            Content::Element(child) => {
                let child = self.element(child);
                quote!(#e.append_child(#child);)
            }
            Content::Hole(hole) if hole.spec.is_empty() => {
                let value = self.bind(hole);
                let v = Ident::new("__xml_v", Span::mixed_site());
                // Autoref specialisation: the method found first (fewest references added)
                // decides whether the value is elements or text; see `__private`.
                quote!({
                    let #v = #value;
                    (&&&#krate::__private::wrap(&#v)).__xml_kind().push(&mut #e, #v);
                })
            }
            Content::Hole(hole) => {
                let args = self.format(hole);
                quote!(#krate::__private::push_display(&mut #e, #args);)
            }
        });
        quote!({
            #(#decls)*
            let mut #e = #krate::__private::element(#name, #ns);
            #(#attrs)*
            #(#children)*
            #e
        })
    }
}
