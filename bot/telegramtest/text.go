package telegramtest

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"

	"github.com/go-telegram/bot/models"
)

// utf16Len is a string's length as Telegram counts it (UTF-16 code units).
func utf16Len(s string) int {
	n := 0
	for _, r := range s { // an invalid byte reads as U+FFFD: one unit
		n += utf16.RuneLen(r)
	}
	return n
}

// renderText parses text the way Telegram does for parse_mode and returns
// what the user sees. Markup errors are reported as Telegram words them
// after "can't parse entities: ".
func renderText(src, parseMode string) (string, error) {
	switch strings.ToLower(parseMode) {
	case "":
		return src, nil
	case "html":
		return parseHTML(src)
	case "markdownv2":
		return parseMarkdownV2(src)
	case "markdown":
		return parseMarkdown(src)
	}
	return "", fmt.Errorf("unsupported parse_mode %q", parseMode)
}

var htmlTags = map[string]bool{
	"b": true, "strong": true, "i": true, "em": true, "u": true, "ins": true,
	"s": true, "strike": true, "del": true, "span": true, "tg-spoiler": true,
	"a": true, "code": true, "pre": true, "blockquote": true, "tg-emoji": true,
	"tg-time": true,
}

func isTagNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
}

func parseHTML(src string) (string, error) {
	var out strings.Builder
	var stack []string
	for i := 0; i < len(src); {
		switch src[i] {
		case '<':
			start := i
			j := i + 1
			closing := j < len(src) && src[j] == '/'
			if closing {
				j++
			}
			k := j
			for k < len(src) && isTagNameByte(src[k]) {
				k++
			}
			name := strings.ToLower(src[j:k])
			end := tagEnd(src, k)
			if end < 0 {
				return "", fmt.Errorf("Unclosed start tag at byte offset %d", start)
			}
			if name == "" {
				return "", fmt.Errorf("Unexpected end of name token at byte offset %d", k)
			}
			if closing {
				if len(stack) == 0 {
					return "", fmt.Errorf("Unexpected end tag at byte offset %d", start)
				}
				if top := stack[len(stack)-1]; top != name {
					return "", fmt.Errorf("Unmatched end tag at byte offset %d, expected \"</%s>\", found \"</%s>\"", start, top, name)
				}
				stack = stack[:len(stack)-1]
			} else {
				if !htmlTags[name] {
					return "", fmt.Errorf("Unsupported start tag \"%s\" at byte offset %d", name, start)
				}
				if name == "span" && !strings.Contains(src[k:end], "tg-spoiler") {
					return "", fmt.Errorf("Tag \"span\" must have class \"tg-spoiler\" at byte offset %d", start)
				}
				stack = append(stack, name)
			}
			i = end + 1
		case '&':
			r, n := htmlEntity(src[i:])
			if n == 0 {
				out.WriteByte('&')
				i++
				continue
			}
			out.WriteRune(r)
			i += n
		default:
			out.WriteByte(src[i])
			i++
		}
	}
	if len(stack) > 0 {
		return "", fmt.Errorf("Can't find end tag corresponding to start tag \"%s\"", stack[len(stack)-1])
	}
	return out.String(), nil
}

// tagEnd finds the '>' closing a tag whose name ends at i, skipping quoted
// attribute values; -1 if there is none.
func tagEnd(src string, i int) int {
	var quote byte
	for ; i < len(src); i++ {
		c := src[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '>':
			return i
		}
	}
	return -1
}

// htmlEntity decodes the entities Telegram supports (&lt; &gt; &amp; &quot;
// and numeric ones); n is 0 when s does not start with one.
func htmlEntity(s string) (r rune, n int) {
	semi := strings.IndexByte(s, ';')
	if semi < 2 || semi > 10 {
		return 0, 0
	}
	name := s[1:semi]
	switch name {
	case "lt":
		return '<', semi + 1
	case "gt":
		return '>', semi + 1
	case "amp":
		return '&', semi + 1
	case "quot":
		return '"', semi + 1
	}
	if strings.HasPrefix(name, "#x") || strings.HasPrefix(name, "#X") {
		v, err := strconv.ParseUint(name[2:], 16, 32)
		if err == nil {
			return rune(v), semi + 1
		}
	} else if strings.HasPrefix(name, "#") {
		v, err := strconv.ParseUint(name[1:], 10, 32)
		if err == nil {
			return rune(v), semi + 1
		}
	}
	return 0, 0
}

const markdownV2Reserved = "_*[]()~`>#+-=|{}.!"

var markdownV2Names = map[string]string{
	"*": "Bold", "_": "Italic", "__": "Underline", "~": "Strikethrough", "||": "Spoiler", "[": "TextUrl",
}

// parseMarkdownV2 follows Telegram's MarkdownV2: any reserved character
// outside an entity must be escaped with a backslash.
func parseMarkdownV2(src string) (string, error) {
	var out strings.Builder
	type open struct {
		marker string
		at     int
	}
	var stack []open
	toggle := func(marker string, at int) {
		if len(stack) > 0 && stack[len(stack)-1].marker == marker {
			stack = stack[:len(stack)-1]
			return
		}
		stack = append(stack, open{marker, at})
	}
	lineStart := true
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\\':
			if i+1 < len(src) && src[i+1] > 0 && src[i+1] < 127 {
				out.WriteByte(src[i+1])
				i += 2
			} else {
				out.WriteByte(c)
				i++
			}
		case strings.HasPrefix(src[i:], "```"):
			end := strings.Index(src[i+3:], "```")
			if end < 0 {
				return "", fmt.Errorf("Can't find end of Pre entity at byte offset %d", i)
			}
			body := src[i+3 : i+3+end]
			if nl := strings.IndexByte(body, '\n'); nl >= 0 && !strings.ContainsAny(body[:nl], " \t") {
				body = body[nl+1:] // the first line names the language
			}
			out.WriteString(unescapeCode(body))
			i += 3 + end + 3
		case c == '`':
			end := codeEnd(src, i+1, '`')
			if end < 0 {
				return "", fmt.Errorf("Can't find end of Code entity at byte offset %d", i)
			}
			out.WriteString(unescapeCode(src[i+1 : end]))
			i = end + 1
		case strings.HasPrefix(src[i:], "__"):
			toggle("__", i)
			i += 2
		case strings.HasPrefix(src[i:], "||"):
			toggle("||", i)
			i += 2
		case c == '*' || c == '_' || c == '~':
			toggle(string(c), i)
			i++
		case c == '[':
			stack = append(stack, open{"[", i})
			i++
		case c == ']' && len(stack) > 0 && stack[len(stack)-1].marker == "[":
			stack = stack[:len(stack)-1]
			if i+1 >= len(src) || src[i+1] != '(' {
				return "", fmt.Errorf("Can't find end of TextUrl entity at byte offset %d", i)
			}
			end := codeEnd(src, i+2, ')')
			if end < 0 {
				return "", fmt.Errorf("Can't find end of a URL at byte offset %d", i+1)
			}
			i = end + 1
		case c == '>' && lineStart:
			i++ // block quotation
		case strings.IndexByte(markdownV2Reserved, c) >= 0:
			return "", fmt.Errorf("Character '%c' is reserved and must be escaped with the preceding '\\'", c)
		default:
			out.WriteByte(c)
			i++
		}
		lineStart = i > 0 && src[i-1] == '\n'
	}
	if len(stack) > 0 {
		o := stack[len(stack)-1]
		return "", fmt.Errorf("Can't find end of %s entity at byte offset %d", markdownV2Names[o.marker], o.at)
	}
	return out.String(), nil
}

// codeEnd finds the first unescaped end byte from i; -1 if there is none.
func codeEnd(src string, i int, end byte) int {
	for ; i < len(src); i++ {
		switch src[i] {
		case '\\':
			i++
		case end:
			return i
		}
	}
	return -1
}

func unescapeCode(s string) string {
	return strings.NewReplacer("\\`", "`", "\\\\", "\\").Replace(s)
}

// parseMarkdown follows Telegram's legacy Markdown: *bold*, _italic_,
// `code`, ```pre``` and [text](url); a backslash escapes those characters.
func parseMarkdown(src string) (string, error) {
	var out strings.Builder
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\\' && i+1 < len(src) && strings.IndexByte("*_`[", src[i+1]) >= 0:
			out.WriteByte(src[i+1])
			i += 2
		case strings.HasPrefix(src[i:], "```"):
			end := strings.Index(src[i+3:], "```")
			if end < 0 {
				return "", fmt.Errorf("Can't find end of the entity starting at byte offset %d", i)
			}
			out.WriteString(src[i+3 : i+3+end])
			i += 3 + end + 3
		case c == '*' || c == '_' || c == '`':
			end := strings.IndexByte(src[i+1:], c)
			if end < 0 {
				return "", fmt.Errorf("Can't find end of the entity starting at byte offset %d", i)
			}
			out.WriteString(src[i+1 : i+1+end])
			i += 1 + end + 1
		case c == '[':
			close := strings.IndexByte(src[i:], ']')
			if close < 0 || i+close+1 >= len(src) || src[i+close+1] != '(' {
				out.WriteByte(c)
				i++
				continue
			}
			end := strings.IndexByte(src[i+close+2:], ')')
			if end < 0 {
				return "", fmt.Errorf("Can't find end of a URL at byte offset %d", i+close+1)
			}
			out.WriteString(src[i+1 : i+close])
			i += close + 2 + end + 1
		default:
			out.WriteByte(c)
			i++
		}
	}
	return out.String(), nil
}

// commandEntities finds bot commands ("/start", "/job@fieldops_bot") at the
// start of a word, as Telegram marks them in users' messages, with offsets
// and lengths in UTF-16 code units.
func commandEntities(text string) []models.MessageEntity {
	var out []models.MessageEntity
	prev := ' '
	for i, r := range text {
		if r == '/' && unicode.IsSpace(prev) {
			j := i + 1
			for j < len(text) && isCommandByte(text[j]) {
				j++
			}
			if n := j - (i + 1); n >= 1 && n <= 32 {
				if j < len(text) && text[j] == '@' {
					k := j + 1
					for k < len(text) && isCommandByte(text[k]) {
						k++
					}
					if k > j+1 {
						j = k
					}
				}
				out = append(out, models.MessageEntity{
					Type:   models.MessageEntityTypeBotCommand,
					Offset: utf16Len(text[:i]),
					Length: utf16Len(text[i:j]),
				})
			}
		}
		prev = r
	}
	return out
}

func isCommandByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}
