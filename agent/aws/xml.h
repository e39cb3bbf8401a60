/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small libxml2 helpers for AWS answers: a parse that refuses DTDs, entities and the network, and
 * lookups by local name so that the EC2 namespace (which changes with the API version) does not
 * matter.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <libxml/tree.h>

/* No AWS answer we read comes near this; anything larger is refused before libxml2 sees it. */
#define XML_MAX_BODY (16u * 1024u * 1024u)

/*
 * Parse an XML document. -EBADMSG for anything that is not well-formed XML with a root element,
 * or that carries a DTD (AWS never sends one, and refusing it rules out entity tricks); -EFBIG
 * above XML_MAX_BODY. Nesting is limited by libxml2's own depth ceiling (no XML_PARSE_HUGE).
 */
int xml_parse(const char *body, size_t len, xmlDoc **ret);

static inline void xml_doc_freep(xmlDoc **d)
{
        if (*d)
                xmlFreeDoc(*d);
}
#define _cleanup_xml_doc_ __attribute__((cleanup(xml_doc_freep)))

/* True when n is an element whose local name (any namespace) is name. */
bool xml_is(const xmlNode *n, const char *name);
/* The first element child of parent named name, or NULL (parent may be NULL). */
xmlNode *xml_child(const xmlNode *parent, const char *name);
/* The next element sibling after n named name, or NULL. */
xmlNode *xml_next(const xmlNode *n, const char *name);
/* Follow a NULL-terminated chain of child names from n; NULL when a link is missing. */
xmlNode *xml_path(const xmlNode *n, ...) __attribute__((sentinel));

/* How many element children of parent are named name (parent may be NULL). */
size_t xml_count(const xmlNode *parent, const char *name);

#define XML_FOREACH(it, parent, name)                                                              \
        for (xmlNode *it = xml_child((parent), (name)); it; it = xml_next(it, (name)))

/* Read one <item> into elem, a zeroed element of the caller's array. */
typedef int (*xml_item_fn)(const xmlNode *item, void *elem);
/*
 * The <item> children of set (may be NULL) read into a new zeroed array of elem_size elements,
 * one parse() each; *ret stays NULL when there are none. *ret_n counts the elements handed to
 * parse(), a failed one included, so that the caller's cleanup frees whatever they hold. -ENOMEM
 * or the first error of parse(); *ret and *ret_n are set either way (pass (void **)&array).
 */
int xml_parse_items(const xmlNode *set, size_t elem_size, xml_item_fn parse, void **ret,
                    size_t *ret_n);

/*
 * The text of an element: its text and CDATA children joined (never entity expansions). 0 and a
 * string the caller frees, -ENOMEM.
 */
int xml_text(const xmlNode *n, char **ret);
/* The text of child name of parent: -ENOENT when there is no such child. */
int xml_child_text(const xmlNode *parent, const char *name, char **ret);
/* Like xml_child_text, but a missing child leaves *ret NULL and returns 0. */
int xml_child_text_opt(const xmlNode *parent, const char *name, char **ret);
