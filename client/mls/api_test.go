package mls_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// publicAPI is every exported name of package mls: top-level
// identifiers, methods of exported types and fields of exported structs.
// Adding to it is a deliberate change of the API: the package keeps a
// small surface and puts everything else under internal/.
var publicAPI = []string{
	"const CredentialTypeXchat",
	"const KindApplication",
	"const KindCommit",
	"const KindProposal",
	"const WireFormatGroupInfo",
	"const WireFormatKeyPackage",
	"const WireFormatPrivateMessage",
	"const WireFormatPublicMessage",
	"const WireFormatWelcome",
	"const X25519AES128GCMSHA256Ed25519",
	"const XWingAES128GCMSHA256Ed25519",
	"field CommitOptions.Add",
	"field CommitOptions.AuthenticatedData",
	"field CommitOptions.NoPending",
	"field CommitOptions.PSKs",
	"field CommitOptions.Remove",
	"field CommitOptions.Update",
	"field Config.EncryptHandshake",
	"field Config.ExternalPSK",
	"field Config.MaxMembers",
	"field Config.MaxOutOfOrder",
	"field Config.MaxRetainedEpochs",
	"field Config.Padding",
	"field Config.ValidateCredential",
	"field KeyPackageBundle.EncryptionPriv",
	"field KeyPackageBundle.InitPriv",
	"field KeyPackageBundle.KeyPackage",
	"field KeyPackageBundle.SignaturePriv",
	"field KeyPackageOptions.CredentialTypes",
	"field KeyPackageOptions.Extensions",
	"field KeyPackageOptions.KeyPackageExtensions",
	"field KeyPackageOptions.LeafExtensions",
	"field KeyPackageOptions.NotAfter",
	"field KeyPackageOptions.NotBefore",
	"field LostCommit.Epoch",
	"field LostCommit.Retry",
	"field Member.Credential",
	"field Member.EncryptionKey",
	"field Member.Leaf",
	"field Member.SignatureKey",
	"field Processed.Added",
	"field Processed.AuthenticatedData",
	"field Processed.Credential",
	"field Processed.Epoch",
	"field Processed.Kind",
	"field Processed.LostOwnCommit",
	"field Processed.NewEpoch",
	"field Processed.Plaintext",
	"field Processed.Removed",
	"field Processed.SelfRemoved",
	"field Processed.Sender",
	"field Processed.SignatureKey",
	"field Processed.Updated",
	"func CreateGroup",
	"func JoinExternal",
	"func JoinFromWelcome",
	"func LookupSuite",
	"func NewKeyPackage",
	"func ParseKeyPackage",
	"func UnmarshalGroup",
	"func UnmarshalKeyPackageBundle",
	"func XchatKeyPackageOptions",
	"method Group.CipherSuite",
	"method Group.Commit",
	"method Group.Encrypt",
	"method Group.Epoch",
	"method Group.EpochAuthenticator",
	"method Group.Export",
	"method Group.GroupID",
	"method Group.GroupInfo",
	"method Group.MarshalState",
	"method Group.Members",
	"method Group.OwnLeaf",
	"method Group.Process",
	"method Group.ProposeAdd",
	"method Group.ProposeRemove",
	"method Group.ProposeUpdate",
	"method Group.RatchetTree",
	"method Group.Removed",
	"method Group.WelcomedBy",
	"method KeyPackageBundle.MarshalBinary",
	"method KeyPackageBundle.Message",
	"method KeyPackageBundle.Ref",
	"type CipherSuite",
	"type CipherSuiteID",
	"type CommitOptions",
	"type Config",
	"type Credential",
	"type Extension",
	"type Group",
	"type KeyPackage",
	"type KeyPackageBundle",
	"type KeyPackageOptions",
	"type LeafIndex",
	"type LostCommit",
	"type MLSMessage",
	"type Member",
	"type MessageKind",
	"type PreSharedKeyID",
	"type Processed",
	"type WireFormat",
	"var ErrInvalidCommit",
	"var ErrInvalidCredential",
	"var ErrInvalidKeyPackage",
	"var ErrInvalidProposal",
	"var ErrNoCredentialValidator",
	"var ErrNotMember",
	"var ErrRemoved",
	"var ErrReplay",
	"var ErrStaleCommit",
	"var ErrTampered",
	"var ErrTooManyMembers",
	"var ErrWrongEpoch",
	"var ErrWrongGroup",
}

// exportedNames lists the exported names declared by the non-test files
// of the package in dir, in the form of publicAPI.
func exportedNames(t *testing.T, dir string) []string {
	t.Helper()
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				if d.Recv == nil {
					out = append(out, "func "+d.Name.Name)
					continue
				}
				recv := d.Recv.List[0].Type
				if s, ok := recv.(*ast.StarExpr); ok {
					recv = s.X
				}
				if id, ok := recv.(*ast.Ident); ok && id.IsExported() {
					out = append(out, "method "+id.Name+"."+d.Name.Name)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if !s.Name.IsExported() {
							continue
						}
						out = append(out, "type "+s.Name.Name)
						st, ok := s.Type.(*ast.StructType)
						if !ok {
							continue
						}
						for _, fld := range st.Fields.List {
							for _, n := range fld.Names {
								if n.IsExported() {
									out = append(out, "field "+s.Name.Name+"."+n.Name)
								}
							}
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								out = append(out, d.Tok.String()+" "+n.Name)
							}
						}
					}
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// The exported API of package mls is exactly publicAPI.
func TestPublicAPI(t *testing.T) {
	t.Parallel()
	got := exportedNames(t, ".")
	want := slices.Sorted(slices.Values(publicAPI))
	for _, n := range got {
		if !slices.Contains(want, n) {
			t.Errorf("new export %q: keep it unexported or under internal/, or add it to publicAPI deliberately", n)
		}
	}
	for _, n := range want {
		if !slices.Contains(got, n) {
			t.Errorf("export %q is gone: remove it from publicAPI", n)
		}
	}
}
