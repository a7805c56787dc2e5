/*
 * sandbox_pattern.c - string.find/match/gmatch/gsub for user code, with the
 * matcher's work charged to the running execution.
 *
 * Lua patterns backtrack: string.rep('a?', 30) .. string.rep('a', 30)
 * against 30 'a's takes 2^30 steps, and '(.-)(.-)(.-)x' is cubic, all inside
 * one C call where the count hook never runs.  Rejecting "complex" patterns
 * cannot be sound without rejecting ordinary ones (a trim pattern is already
 * quadratic), so instead this is a matcher with the semantics of Lua 5.4
 * patterns that counts its steps (one per match attempt and per expansion
 * step) and charges them to the exec every 1024 steps: a pathological
 * pattern ends with "instruction limit exceeded" or "deadline exceeded" like
 * any loop.  Recursion is capped at 200 levels ("pattern too complex"), and
 * plain searches use memmem, which is linear.
 */
#include <ctype.h>
#include <string.h>

#include <lauxlib.h>

#include "sandbox_int.h"

#define MAXCAPTURES 32
#define MAXDEPTH 200
#define CAP_UNFINISHED (-1)
#define CAP_POSITION (-2)
#define SPECIALS "^$*+?.([%-"

typedef struct mstate {
    const char *src, *src_end; /* subject */
    const char *pat_end;
    lua_State *L;
    int depth;                 /* remaining recursion */
    int level;                 /* captures in use */
    uint64_t steps;
    struct {
        const char *init;
        ptrdiff_t len;
    } cap[MAXCAPTURES];
} mstate;

static const char *do_match(mstate *ms, const char *s, const char *p);

/* One unit of matcher work; every 1024 are charged to the exec. */
static void step(mstate *ms) {
    if ((++ms->steps & 1023) == 0) sio_exec_charge(ms->L, 1024);
}

/* Does byte c belong to class %cl (upper case = complement)? */
static int class_has(int c, int cl) {
    int r;
    switch (tolower(cl)) {
    case 'a': r = isalpha(c); break;
    case 'c': r = iscntrl(c); break;
    case 'd': r = isdigit(c); break;
    case 'g': r = isgraph(c); break;
    case 'l': r = islower(c); break;
    case 'p': r = ispunct(c); break;
    case 's': r = isspace(c); break;
    case 'u': r = isupper(c); break;
    case 'w': r = isalnum(c); break;
    case 'x': r = isxdigit(c); break;
    case 'z': r = c == 0; break; /* deprecated, still in 5.4 */
    default: return cl == c; /* %x for a non-letter x is x itself */
    }
    return isupper(cl) ? !r : r != 0;
}

/* Does c match the set [ ... ] spanning p (at '[') to close (at ']')? */
static int set_has(int c, const char *p, const char *close) {
    int yes = 1;
    if (p[1] == '^') {
        yes = 0;
        p++;
    }
    while (++p < close) {
        if (*p == '%') {
            p++;
            if (class_has(c, (unsigned char)*p)) return yes;
        } else if (p[1] == '-' && p + 2 < close) {
            if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2]) return yes;
            p += 2;
        } else if ((unsigned char)*p == c) {
            return yes;
        }
    }
    return !yes;
}

/* End of the single-character item starting at p. */
static const char *item_end(mstate *ms, const char *p) {
    char c = *p++;
    if (c == '%') {
        if (p >= ms->pat_end) luaL_error(ms->L, "malformed pattern (ends with '%%')");
        return p + 1;
    }
    if (c == '[') {
        if (*p == '^') p++;
        do { /* the first character may be ']' */
            if (p >= ms->pat_end) luaL_error(ms->L, "malformed pattern (missing ']')");
            if (*p++ == '%' && p < ms->pat_end) p++;
        } while (*p != ']');
        return p + 1;
    }
    return p;
}

/* Does the subject byte at s match the item [p, ep)? */
static int item_matches(mstate *ms, const char *s, const char *p, const char *ep) {
    if (s >= ms->src_end) return 0;
    int c = (unsigned char)*s;
    switch (*p) {
    case '.': return 1;
    case '%': return class_has(c, (unsigned char)p[1]);
    case '[': return set_has(c, p, ep - 1);
    default: return (unsigned char)*p == c;
    }
}

/* Greedy repetition: longest run first, then back off. */
static const char *max_expand(mstate *ms, const char *s, const char *p, const char *ep) {
    ptrdiff_t i = 0;
    while (item_matches(ms, s + i, p, ep)) {
        step(ms);
        i++;
    }
    for (; i >= 0; i--) {
        const char *r = do_match(ms, s + i, ep + 1);
        if (r != NULL) return r;
    }
    return NULL;
}

/* Lazy repetition: shortest run first. */
static const char *min_expand(mstate *ms, const char *s, const char *p, const char *ep) {
    for (;;) {
        const char *r = do_match(ms, s, ep + 1);
        if (r != NULL) return r;
        if (!item_matches(ms, s, p, ep)) return NULL;
        s++;
    }
}

static const char *open_capture(mstate *ms, const char *s, const char *p, ptrdiff_t what) {
    if (ms->level >= MAXCAPTURES) luaL_error(ms->L, "too many captures");
    ms->cap[ms->level].init = s;
    ms->cap[ms->level].len = what;
    ms->level++;
    const char *r = do_match(ms, s, p);
    if (r == NULL) ms->level--;
    return r;
}

static const char *close_capture(mstate *ms, const char *s, const char *p) {
    int l = ms->level - 1;
    while (l >= 0 && ms->cap[l].len != CAP_UNFINISHED) l--;
    if (l < 0) luaL_error(ms->L, "invalid pattern capture");
    ms->cap[l].len = s - ms->cap[l].init;
    const char *r = do_match(ms, s, p);
    if (r == NULL) ms->cap[l].len = CAP_UNFINISHED;
    return r;
}

/* %bxy: a balanced run from x to the matching y. */
static const char *balance(mstate *ms, const char *s, const char *p) {
    if (p + 1 >= ms->pat_end) luaL_error(ms->L, "malformed pattern (missing arguments to '%%b')");
    if (s >= ms->src_end || *s != p[0]) return NULL;
    int depth = 1;
    while (++s < ms->src_end) {
        step(ms);
        if (*s == p[1]) {
            if (--depth == 0) return s + 1;
        } else if (*s == p[0]) {
            depth++;
        }
    }
    return NULL;
}

/* %1..%9: the text of an earlier closed capture. */
static const char *backref(mstate *ms, const char *s, int digit) {
    int l = digit - '1';
    if (l < 0 || l >= ms->level || ms->cap[l].len == CAP_UNFINISHED)
        luaL_error(ms->L, "invalid capture index %%%d", l + 1);
    ptrdiff_t len = ms->cap[l].len;
    if (len < 0 || ms->src_end - s < len || memcmp(ms->cap[l].init, s, (size_t)len) != 0)
        return NULL;
    return s + len;
}

/* %f[set]: a frontier between a byte not in set and one in it. */
static const char *frontier(mstate *ms, const char *s, const char *p, const char **next) {
    if (*p != '[') luaL_error(ms->L, "missing '[' after '%%f' in pattern");
    const char *ep = item_end(ms, p);
    int prev = s == ms->src ? 0 : (unsigned char)s[-1];
    int cur = s < ms->src_end ? (unsigned char)*s : 0;
    *next = ep;
    return (!set_has(prev, p, ep - 1) && set_has(cur, p, ep - 1)) ? s : NULL;
}

/* A single item, optionally quantified. Returns the match end or NULL;
 * *cont is set when matching should continue at *p with the returned s. */
static const char *match_item(mstate *ms, const char *s, const char **pp, int *cont) {
    const char *p = *pp, *ep = item_end(ms, p);
    char q = ep < ms->pat_end ? *ep : '\0';
    *cont = 0;
    if (!item_matches(ms, s, p, ep)) {
        if (q == '*' || q == '?' || q == '-') {
            *pp = ep + 1;
            *cont = 1;
            return s;
        }
        return NULL;
    }
    switch (q) {
    case '?': {
        const char *r = do_match(ms, s + 1, ep + 1);
        if (r != NULL) return r;
        *pp = ep + 1;
        *cont = 1;
        return s;
    }
    case '+': return max_expand(ms, s + 1, p, ep);
    case '*': return max_expand(ms, s, p, ep);
    case '-': return min_expand(ms, s, p, ep);
    default:
        *pp = ep;
        *cont = 1;
        return s + 1;
    }
}

/* Handles the '%' escapes that are not single-character classes.  Returns
 * 1 when it handled p (result in *out, continuation in *cont). */
static int match_escape(mstate *ms, const char **s, const char **pp, int *cont) {
    const char *p = *pp;
    if (p[1] == 'b') {
        *s = balance(ms, *s, p + 2);
        *pp = p + 4;
    } else if (p[1] == 'f') {
        *s = frontier(ms, *s, p + 2, pp);
    } else if (p[1] >= '0' && p[1] <= '9') {
        *s = backref(ms, *s, p[1]);
        *pp = p + 2;
    } else {
        return 0;
    }
    *cont = *s != NULL;
    return 1;
}

static const char *do_match(mstate *ms, const char *s, const char *p) {
    if (ms->depth-- == 0) luaL_error(ms->L, "pattern too complex");
    int cont = 1;
    while (cont && s != NULL) {
        step(ms);
        if (p >= ms->pat_end) break;
        if (*p == '(') {
            s = p + 1 < ms->pat_end && p[1] == ')' ? open_capture(ms, s, p + 2, CAP_POSITION)
                                                   : open_capture(ms, s, p + 1, CAP_UNFINISHED);
            cont = 0;
        } else if (*p == ')') {
            s = close_capture(ms, s, p + 1);
            cont = 0;
        } else if (*p == '$' && p + 1 == ms->pat_end) {
            if (s != ms->src_end) s = NULL;
            cont = 0;
        } else if (!(*p == '%' && match_escape(ms, &s, &p, &cont))) {
            s = match_item(ms, s, &p, &cont);
        }
    }
    ms->depth++;
    return s;
}

/* --- captures and API -----------------------------------------------------*/

static void ms_init(mstate *ms, lua_State *L, const char *s, size_t ls, const char *p,
                    size_t lp) {
    ms->L = L;
    ms->src = s;
    ms->src_end = s + ls;
    ms->pat_end = p + lp;
    ms->steps = 0;
}

static void ms_reset(mstate *ms) {
    ms->level = 0;
    ms->depth = MAXDEPTH;
}

/* Pushes capture i (or the whole match s..e when there are none). */
static void push_capture(mstate *ms, int i, const char *s, const char *e) {
    if (i >= ms->level) {
        if (i != 0) luaL_error(ms->L, "invalid capture index %%%d", i + 1);
        lua_pushlstring(ms->L, s, (size_t)(e - s));
        return;
    }
    ptrdiff_t l = ms->cap[i].len;
    if (l == CAP_UNFINISHED) luaL_error(ms->L, "unfinished capture");
    if (l == CAP_POSITION)
        lua_pushinteger(ms->L, (ms->cap[i].init - ms->src) + 1);
    else
        lua_pushlstring(ms->L, ms->cap[i].init, (size_t)l);
}

static int push_captures(mstate *ms, const char *s, const char *e, int wholeifnone) {
    int n = (ms->level == 0 && wholeifnone) ? 1 : ms->level;
    luaL_checkstack(ms->L, n, "too many captures");
    for (int i = 0; i < n; i++) push_capture(ms, i, s, e);
    return n;
}

/* 1-based init argument to a 0-based offset; > len means "no match". */
static size_t start_offset(lua_State *L, int arg, size_t len) {
    lua_Integer pos = luaL_optinteger(L, arg, 1);
    if (pos > 0) return (size_t)pos - 1;
    lua_Unsigned back = (lua_Unsigned)0 - (lua_Unsigned)pos; /* -pos, no overflow */
    if (pos == 0 || back > len) return 0;
    return len - (size_t)back;
}

static int has_specials(const char *p, size_t lp) {
    for (size_t i = 0; i < lp; i++)
        if (p[i] != '\0' && strchr(SPECIALS, p[i]) != NULL) return 1;
    return 0;
}

static int find_aux(lua_State *L, int find) {
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = start_offset(L, 3, ls);
    if (init > ls) goto nomatch;
    if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
        const char *r = memmem(s + init, ls - init, p, lp);
        if (r == NULL) goto nomatch;
        lua_pushinteger(L, (r - s) + 1);
        lua_pushinteger(L, (lua_Integer)((size_t)(r - s) + lp));
        return 2;
    }
    mstate ms;
    int anchor = lp > 0 && *p == '^';
    ms_init(&ms, L, s, ls, p + anchor, lp - (size_t)anchor);
    const char *s1 = s + init;
    do {
        ms_reset(&ms);
        const char *e = do_match(&ms, s1, p + anchor);
        if (e != NULL) {
            if (!find) return push_captures(&ms, s1, e, 1);
            lua_pushinteger(L, (s1 - s) + 1);
            lua_pushinteger(L, e - s);
            return push_captures(&ms, NULL, NULL, 0) + 2;
        }
    } while (s1++ < ms.src_end && !anchor);
nomatch:
    lua_pushnil(L);
    return 1;
}

int sio_str_find(lua_State *L) { return find_aux(L, 1); }
int sio_str_match(lua_State *L) { return find_aux(L, 0); }

/* gmatch iterator. Upvalues: subject, pattern, next offset, last match end
 * (-1 = none). */
static int gmatch_next(lua_State *L) {
    size_t ls, lp;
    const char *s = lua_tolstring(L, lua_upvalueindex(1), &ls);
    const char *p = lua_tolstring(L, lua_upvalueindex(2), &lp);
    lua_Integer pos = lua_tointeger(L, lua_upvalueindex(3));
    lua_Integer last = lua_tointeger(L, lua_upvalueindex(4));
    mstate ms;
    if (pos < 0 || (size_t)pos > ls) return 0;
    ms_init(&ms, L, s, ls, p, lp);
    for (const char *src = s + pos; src <= ms.src_end; src++) {
        ms_reset(&ms);
        const char *e = do_match(&ms, src, p);
        if (e != NULL && e - s != last) {
            lua_pushinteger(L, e - s);
            lua_copy(L, -1, lua_upvalueindex(3));
            lua_replace(L, lua_upvalueindex(4));
            return push_captures(&ms, src, e, 1);
        }
    }
    return 0;
}

int sio_str_gmatch(lua_State *L) {
    size_t ls;
    luaL_checklstring(L, 1, &ls);
    luaL_checkstring(L, 2);
    size_t init = start_offset(L, 3, ls);
    if (init > ls) init = ls + 1; /* start after the end: no matches */
    lua_settop(L, 2);
    lua_pushinteger(L, (lua_Integer)init);
    lua_pushinteger(L, -1);
    lua_pushcclosure(L, gmatch_next, 4);
    return 1;
}

/* Appends the replacement string (upvalue-free: at index 3) with %0-%9. */
static void add_string(mstate *ms, luaL_Buffer *b, const char *s, const char *e) {
    size_t l;
    const char *r = lua_tolstring(ms->L, 3, &l);
    const char *end = r + l, *pct;
    while ((pct = memchr(r, '%', (size_t)(end - r))) != NULL) {
        luaL_addlstring(b, r, (size_t)(pct - r));
        pct++;
        if (pct < end && *pct == '%') {
            luaL_addchar(b, '%');
        } else if (pct < end && isdigit((unsigned char)*pct)) {
            if (*pct == '0') luaL_addlstring(b, s, (size_t)(e - s));
            else {
                push_capture(ms, *pct - '1', s, e);
                luaL_tolstring(ms->L, -1, NULL);
                lua_remove(ms->L, -2);
                luaL_addvalue(b);
            }
        } else {
            luaL_error(ms->L, "invalid use of '%%' in replacement string");
        }
        r = pct + 1;
    }
    luaL_addlstring(b, r, (size_t)(end - r));
}

/* Appends the replacement for match s..e per the type of argument 3. */
static void add_value(mstate *ms, luaL_Buffer *b, const char *s, const char *e, int tr) {
    lua_State *L = ms->L;
    if (tr == LUA_TFUNCTION) {
        lua_pushvalue(L, 3);
        int n = push_captures(ms, s, e, 1);
        lua_call(L, n, 1);
    } else if (tr == LUA_TTABLE) {
        push_capture(ms, 0, s, e);
        lua_gettable(L, 3);
    } else {
        add_string(ms, b, s, e);
        return;
    }
    if (!lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        luaL_addlstring(b, s, (size_t)(e - s));
    } else if (!lua_isstring(L, -1)) {
        luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    } else {
        luaL_addvalue(b);
    }
}

int sio_str_gsub(lua_State *L) {
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    int tr = lua_type(L, 3);
    lua_Integer max_n = luaL_optinteger(L, 4, (lua_Integer)ls + 1), n = 0;
    luaL_argexpected(L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION ||
                        tr == LUA_TTABLE, 3, "string/function/table");
    int anchor = lp > 0 && *p == '^';
    mstate ms;
    ms_init(&ms, L, s, ls, p + anchor, lp - (size_t)anchor);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    const char *src = s, *last = NULL;
    while (n < max_n) {
        ms_reset(&ms);
        const char *e = do_match(&ms, src, p + anchor);
        if (e != NULL && e != last) {
            n++;
            add_value(&ms, &b, src, e, tr);
            src = last = e;
        } else if (src < ms.src_end) {
            luaL_addchar(&b, *src++);
        } else {
            break;
        }
        if (anchor) break;
    }
    luaL_addlstring(&b, src, (size_t)(ms.src_end - src));
    luaL_pushresult(&b);
    lua_pushinteger(L, n);
    return 2;
}
