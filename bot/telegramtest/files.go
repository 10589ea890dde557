package telegramtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"image"
	_ "image/gif" // decode GIF uploads
	"image/jpeg"
	_ "image/png" // decode PNG uploads
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/go-telegram/bot/models"
)

// file is a stored file: a photo size or a document.
type file struct {
	id       string
	uniqueID string
	path     string
	mime     string
	data     []byte
	size     int64
}

func (s *Server) addFileLocked(dir, filename, mimeType string, data []byte) *file {
	s.nextFile++
	ext := path.Ext(filename)
	if mimeType == "" {
		mimeType = mime.TypeByExtension(ext)
	}
	if mimeType == "" {
		mimeType = http.DetectContentType(data)
	}
	if ext == "" {
		if exts, _ := mime.ExtensionsByType(mimeType); len(exts) > 0 {
			ext = exts[0]
		}
	}
	prefix := "BQACAgQAAxkBAAI" // documents
	if dir == "photos" {
		prefix = "AgACAgQAAxkBAAI"
	}
	sum := sha256.Sum256(data)
	f := &file{
		id:       prefix + base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "fieldops-file-%06d", s.nextFile)),
		uniqueID: "AQAD" + base64.RawURLEncoding.EncodeToString(sum[:9]),
		path:     fmt.Sprintf("%s/file_%d%s", dir, s.nextFile, ext),
		mime:     mimeType,
		data:     data,
		size:     int64(len(data)),
	}
	s.files[f.id] = f
	s.filePaths[f.path] = f
	return f
}

// photoSizesLocked stores a photo the way Telegram offers it: smaller JPEG
// renditions (90, 320 and 800 pixels on the long side, where smaller than
// the original) and the original bytes as the largest size. Data that does
// not decode as an image yields one size of 1280×960.
func (s *Server) photoSizesLocked(data []byte) []models.PhotoSize {
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		f := s.addFileLocked("photos", "photo.jpg", "image/jpeg", data)
		return []models.PhotoSize{{FileID: f.id, FileUniqueID: f.uniqueID, Width: 1280, Height: 960, FileSize: int(f.size)}}
	}
	b := img.Bounds()
	var sizes []models.PhotoSize
	for _, side := range []int{90, 320, 800} {
		if side >= max(b.Dx(), b.Dy()) {
			break
		}
		small := downscale(img, side)
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, small, &jpeg.Options{Quality: 80}); err != nil {
			continue
		}
		f := s.addFileLocked("photos", "photo.jpg", "image/jpeg", buf.Bytes())
		sb := small.Bounds()
		sizes = append(sizes, models.PhotoSize{FileID: f.id, FileUniqueID: f.uniqueID, Width: sb.Dx(), Height: sb.Dy(), FileSize: int(f.size)})
	}
	f := s.addFileLocked("photos", "photo.jpg", "", data)
	return append(sizes, models.PhotoSize{FileID: f.id, FileUniqueID: f.uniqueID, Width: b.Dx(), Height: b.Dy(), FileSize: int(f.size)})
}

// downscale shrinks img so that its long side is side pixels (nearest
// neighbour: thumbnails only need to exist and be images).
func downscale(img image.Image, side int) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	nw, nh := side, max(h*side/w, 1)
	if h > w {
		nw, nh = max(w*side/h, 1), side
	}
	out := image.NewRGBA(image.Rect(0, 0, nw, nh))
	for y := range nh {
		for x := range nw {
			out.Set(x, y, img.At(b.Min.X+x*w/nw, b.Min.Y+y*h/nh))
		}
	}
	return out
}

func (s *Server) getFile(_ context.Context, p *params) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.files[p.str("file_id")]
	if f == nil {
		return nil, badRequest("wrong file_id or the file is temporarily unavailable")
	}
	if f.size > s.cfg.maxDownload {
		return nil, badRequest("file is too big")
	}
	return models.File{FileID: f.id, FileUniqueID: f.uniqueID, FileSize: f.size, FilePath: f.path}, nil
}

// serveFile answers GET /file/bot<token>/<file_path>.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	rec := Request{Method: "file", At: time.Now()}
	token, filePath, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/file/bot"), "/")
	rec.Params = map[string]string{"file_path": filePath}
	if token != s.cfg.token {
		s.answer(w, rec, nil, errUnauthorized, false)
		return
	}
	f, faulty := s.popFault("file")
	if faulty {
		switch f.kind {
		case faultFail:
			s.answer(w, rec, nil, statusError(f.status), false)
			return
		case faultDelay:
			if !s.sleep(r.Context(), f.delay) {
				rec.Description = "client went away during the injected delay"
				s.record(rec)
				return
			}
		}
	}
	s.mu.Lock()
	stored := s.filePaths[filePath]
	s.mu.Unlock()
	if stored == nil {
		s.answer(w, rec, nil, errNotFound, false)
		return
	}
	if stored.size > s.cfg.maxDownload {
		s.answer(w, rec, nil, badRequest("file is too big"), false)
		return
	}
	rec.Status = http.StatusOK
	if faulty && f.kind == faultLose {
		rec.Dropped = true
		s.record(rec)
		dropConnection(w)
		return
	}
	s.record(rec)
	w.Header().Set("Content-Type", stored.mime)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(stored.data))
}

// inputFile reads a file field: an upload in the multipart body or the
// file_id of a file the server holds.
func (s *Server) inputFileLocked(p *params, field string) (data []byte, filename string, existing *file, aerr *apiError) {
	if up, ok := p.files[field]; ok {
		return up.data, up.filename, nil, nil
	}
	v := p.str(field)
	if strings.HasPrefix(v, "attach://") {
		if up, ok := p.files[strings.TrimPrefix(v, "attach://")]; ok {
			return up.data, up.filename, nil, nil
		}
	}
	if v == "" {
		return nil, "", nil, badRequest("there is no %s in the request", field)
	}
	if f := s.files[v]; f != nil {
		return f.data, path.Base(f.path), f, nil
	}
	// Telegram would fetch an HTTP URL; the local server does not.
	return nil, "", nil, badRequest("wrong file identifier/HTTP URL specified")
}

func (s *Server) sendPhoto(_ context.Context, p *params) (any, *apiError) {
	caption, parseMode := p.str("caption"), p.str("parse_mode")
	plain, aerr := validateText(caption, parseMode, MaxCaptionLength, "caption")
	if aerr != nil {
		return nil, aerr
	}
	markup, aerr := parseMarkup(p.str("reply_markup"), false)
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	data, _, existing, aerr := s.inputFileLocked(p, "photo")
	if aerr != nil {
		return nil, aerr
	}
	if existing == nil {
		if len(data) > MaxPhotoUploadSize {
			return nil, &apiError{code: http.StatusRequestEntityTooLarge, description: "Request Entity Too Large"}
		}
		if _, _, err := image.DecodeConfig(bytes.NewReader(data)); err != nil {
			return nil, badRequest("IMAGE_PROCESS_FAILED")
		}
	}
	c, aerr := s.chatForBotLocked(p)
	if aerr != nil {
		return nil, aerr
	}
	reply, aerr := replyTargetLocked(c, p)
	if aerr != nil {
		return nil, aerr
	}
	if aerr := s.rateLocked(c); aerr != nil {
		return nil, aerr
	}
	sizes := s.photoSizesLocked(data)
	st := &stored{method: "sendPhoto", source: caption, parseMode: parseMode, fileID: sizes[len(sizes)-1].FileID,
		msg: &models.Message{Photo: sizes, Caption: plain, ReplyToMessage: reply}}
	return s.sendLocked(c, st, markup), nil
}

func (s *Server) sendDocument(_ context.Context, p *params) (any, *apiError) {
	caption, parseMode := p.str("caption"), p.str("parse_mode")
	plain, aerr := validateText(caption, parseMode, MaxCaptionLength, "caption")
	if aerr != nil {
		return nil, aerr
	}
	markup, aerr := parseMarkup(p.str("reply_markup"), false)
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	data, filename, existing, aerr := s.inputFileLocked(p, "document")
	if aerr != nil {
		return nil, aerr
	}
	c, aerr := s.chatForBotLocked(p)
	if aerr != nil {
		return nil, aerr
	}
	reply, aerr := replyTargetLocked(c, p)
	if aerr != nil {
		return nil, aerr
	}
	if aerr := s.rateLocked(c); aerr != nil {
		return nil, aerr
	}
	f := existing
	if f == nil {
		f = s.addFileLocked("documents", filename, "", data)
	}
	doc := &models.Document{FileID: f.id, FileUniqueID: f.uniqueID, FileName: filename, MimeType: f.mime, FileSize: f.size}
	st := &stored{method: "sendDocument", source: caption, parseMode: parseMode, fileID: f.id,
		msg: &models.Message{Document: doc, Caption: plain, ReplyToMessage: reply}}
	return s.sendLocked(c, st, markup), nil
}

// File returns the bytes of a file by file_id, e.g. a photo the bot sent.
func (s *Server) File(fileID string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.files[fileID]
	if f == nil {
		return nil, false
	}
	return bytes.Clone(f.data), true
}
