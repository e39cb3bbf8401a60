/* SPDX-License-Identifier: Apache-2.0 */
/* libxml2 helpers: safe parsing and local-name lookups for AWS XML answers. */
#include "aws/xml.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/parser.h>

#include "util/buf.h"
#include "util/macro.h"

int xml_parse(const char *body, size_t len, xmlDoc **ret)
{
        /*
         * No XML_PARSE_NOENT (entities stay unexpanded), no XML_PARSE_DTDLOAD (no external
         * subsets), XML_PARSE_NONET (no network even if asked), and no XML_PARSE_HUGE so that
         * libxml2 keeps its limits on depth and text size. NOERROR/NOWARNING keep libxml2 from
         * printing to stderr: a bad body is reported to the caller as -EBADMSG instead.
         */
        const int options =
                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA;
        xmlDoc *doc;

        if (!body || len == 0)
                return -EBADMSG;
        if (len > XML_MAX_BODY || len > INT_MAX)
                return -EFBIG;
        doc = xmlReadMemory(body, (int)len, "aws.xml", NULL, options);
        if (!doc)
                return -EBADMSG;
        if (doc->intSubset || doc->extSubset || !xmlDocGetRootElement(doc)) {
                xmlFreeDoc(doc);
                return -EBADMSG;
        }
        *ret = doc;
        return 0;
}

bool xml_is(const xmlNode *n, const char *name)
{
        return n && n->type == XML_ELEMENT_NODE && n->name &&
               strcmp((const char *)n->name, name) == 0;
}

static xmlNode *first_named(xmlNode *n, const char *name)
{
        for (; n; n = n->next)
                if (xml_is(n, name))
                        return n;
        return NULL;
}

xmlNode *xml_child(const xmlNode *parent, const char *name)
{
        return parent ? first_named(parent->children, name) : NULL;
}

xmlNode *xml_next(const xmlNode *n, const char *name)
{
        return n ? first_named(n->next, name) : NULL;
}

size_t xml_count(const xmlNode *parent, const char *name)
{
        size_t n = 0;

        for (const xmlNode *c = xml_child(parent, name); c; c = xml_next(c, name))
                n++;
        return n;
}

int xml_parse_items(const xmlNode *set, size_t elem_size, xml_item_fn parse, void **ret,
                    size_t *ret_n)
{
        size_t n = xml_count(set, "item");
        char *v;
        int r;

        if (n == 0)
                return 0;
        v = calloc(n, elem_size);
        if (!v)
                return -ENOMEM;
        *ret = v;
        XML_FOREACH(item, set, "item")
        {
                r = parse(item, v + *ret_n * elem_size);
                (*ret_n)++;
                if (r < 0)
                        return r;
        }
        return 0;
}

xmlNode *xml_path(const xmlNode *n, ...)
{
        const xmlNode *cur = n;
        const char *name;
        va_list ap;

        va_start(ap, n);
        while (cur && (name = va_arg(ap, const char *)))
                cur = xml_child(cur, name);
        va_end(ap);
        return (xmlNode *)cur;
}

int xml_text(const xmlNode *n, char **ret)
{
        /* The input size already bounds the text; the buffer ceiling only has to match it. */
        struct buf b = {.max = XML_MAX_BODY};
        int r = 0;

        for (const xmlNode *c = n ? n->children : NULL; r >= 0 && c; c = c->next) {
                if (c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE)
                        continue;
                if (!c->content)
                        continue;
                r = buf_append(&b, c->content, strlen((const char *)c->content));
        }
        return buf_finish(&b, r, ret, NULL);
}

int xml_child_text(const xmlNode *parent, const char *name, char **ret)
{
        const xmlNode *c = xml_child(parent, name);

        if (!c)
                return -ENOENT;
        return xml_text(c, ret);
}

int xml_child_text_opt(const xmlNode *parent, const char *name, char **ret)
{
        int r = xml_child_text(parent, name, ret);

        if (r == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        return r;
}
