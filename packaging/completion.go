package packaging

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
)

// Argument kinds, for completing a verb's positional arguments.
const (
	argImages     = "images"     // names from `thinbox image ls`
	argContainers = "containers" // names from `thinbox ps -a`
	argFiles      = "files"      // the shell's file names
	argNone       = "none"       // a new name: nothing to offer
)

// ArgKinds says what each verb's positional arguments are: the command tree names them
// only in prose (ArgsUsage), so this is the one table kept by hand. A kind ending in
// "..." repeats; positions past the list complete file names (the command a container
// runs). Completion fails to generate if a verb named here no longer exists, so a
// renamed verb breaks the package build rather than its completion.
var ArgKinds = map[string][]string{
	"run":          {argImages},
	"unit":         {argImages},
	"inspect":      {argContainers},
	"stop":         {argContainers + "..."},
	"rm":           {argContainers + "..."},
	"logs":         {argContainers},
	"image import": {argNone, argFiles},
	"image rm":     {argImages + "..."},
}

// node is one command path of the tree, flattened for the completion scripts.
type node struct {
	path    string // "" for the app, "image import"
	names   []string
	usage   string
	flags   []flagDoc
	subs    []*node
	args    []string
	command *cli.Command
}

func tree(app *cli.App) (*node, error) {
	root := &node{flags: docFlags(app.Flags), usage: app.Usage}
	used := map[string]bool{}
	var walk func(parent *node, cmds []*cli.Command)
	walk = func(parent *node, cmds []*cli.Command) {
		for _, c := range visibleCommands(cmds) {
			p := strings.TrimSpace(parent.path + " " + c.Name)
			n := &node{path: p, names: c.Names(), usage: plain(c.Usage), flags: docFlags(c.Flags), command: c}
			if !c.HideHelp && len(n.flags) == len(withoutHelp(n.flags)) {
				// urfave adds -h/--help to a command only when it runs; every verb has it.
				n.flags = append(n.flags, flagDoc{short: []string{"-h"}, long: []string{"--help"}, usage: "show help"})
			}
			if k, ok := ArgKinds[p]; ok {
				n.args = k
				used[p] = true
			}
			parent.subs = append(parent.subs, n)
			walk(n, c.Subcommands)
		}
	}
	walk(root, app.Commands)
	var stale []string
	for p := range ArgKinds {
		if !used[p] {
			stale = append(stale, p)
		}
	}
	if len(stale) > 0 {
		sort.Strings(stale)
		return nil, fmt.Errorf("packaging: ArgKinds names verbs the CLI does not have: %s", strings.Join(stale, ", "))
	}
	return root, nil
}

// all lists the nodes depth first, the app first.
func (n *node) all() []*node {
	out := []*node{n}
	for _, s := range n.subs {
		out = append(out, s.all()...)
	}
	return out
}

// paths are the spellings of a node's path, aliases included: "image ls", "image list".
func (n *node) paths(parent []string) []string {
	var out []string
	for _, p := range parent {
		for _, name := range n.names {
			out = append(out, strings.TrimSpace(p+" "+name))
		}
	}
	return out
}

func flagWords(fs []flagDoc) (all, valued []string) {
	for _, f := range fs {
		all = append(all, f.names()...)
		if f.value != "" {
			valued = append(valued, f.names()...)
		}
	}
	return all, valued
}

// BashCompletion renders a bash completion script for the app: verbs, subcommands and
// flags from the command tree; image and container names asked of thinbox itself.
func BashCompletion(app *cli.App) ([]byte, error) {
	root, err := tree(app)
	if err != nil {
		return nil, err
	}
	name := app.Name
	fn := "_" + ident(name)
	var cmds, flags, valued, args []string
	var visit func(n *node, spellings []string)
	visit = func(n *node, spellings []string) {
		var subNames []string
		for _, s := range n.subs {
			subNames = append(subNames, s.names...)
		}
		all, val := flagWords(n.flags)
		for _, p := range spellings {
			if len(subNames) > 0 {
				cmds = append(cmds, fmt.Sprintf("\t[%q]=%q", p, strings.Join(subNames, " ")))
			}
			flags = append(flags, fmt.Sprintf("\t[%q]=%q", p, strings.Join(all, " ")))
			valued = append(valued, fmt.Sprintf("\t[%q]=%q", p, " "+strings.Join(val, " ")+" "))
			if len(n.args) > 0 {
				args = append(args, fmt.Sprintf("\t[%q]=%q", p, strings.Join(n.args, " ")))
			}
		}
		for _, s := range n.subs {
			visit(s, s.paths(spellings))
		}
	}
	// Keys are command paths starting with the app's name ("thinbox image ls"): bash
	// does not allow an empty key for the app itself.
	visit(root, []string{name})

	var b bytes.Buffer
	fmt.Fprintf(&b, `# bash completion for %[1]s(1)
# Generated from %[1]s's own command tree by `+"`%[1]s __gendocs`"+`; do not edit.

# Subcommands, flags, and the flags that take a value, by command path ("%[1]s image ls").
# declare -g: bash-completion sources this file inside a function.
declare -gA %[2]s_commands=(
%[3]s
)
declare -gA %[2]s_flags=(
%[4]s
)
declare -gA %[2]s_valued=(
%[5]s
)
# What the positional arguments are: images, containers, files or none ("..." repeats).
declare -gA %[2]s_args=(
%[6]s
)

# Names of images or containers, asked of the same %[1]s binary; nothing when the
# caller may not read the store (it is root's).
%[2]s_names() {
	case $2 in
	images) "$1" image ls 2>/dev/null | awk 'NR > 1 { print $1 }' ;;
	containers) "$1" ps -a 2>/dev/null | awk 'NR > 1 { print $1 }' ;;
	esac
}

%[2]s() {
	local cur words cword
	if declare -F _get_comp_words_by_ref >/dev/null; then
		# bash-completion's: keeps --flag=value and a:b as one word.
		_get_comp_words_by_ref -n =: cur words cword
	else
		words=("${COMP_WORDS[@]}") cword=$COMP_CWORD cur=${COMP_WORDS[COMP_CWORD]}
	fi
	COMPREPLY=()
	# Walk the words before the cursor: a subcommand extends the path; a flag that takes
	# a value skips the next word; anything else is a positional argument, after which
	# flags are no longer parsed (they belong to the container's command).
	local path=%[1]s w i skip=0 nargs=0
	for ((i = 1; i < cword; i++)); do
		w=${words[i]}
		if ((skip)); then
			skip=0
			continue
		fi
		case $w in
		-*=*) ((nargs == 0)) || nargs=$((nargs + 1)) ;;
		-*)
			if ((nargs > 0)); then
				nargs=$((nargs + 1))
			elif [[ ${%[2]s_valued[$path]-} == *" $w "* ]]; then
				skip=1
			fi
			;;
		*)
			if ((nargs == 0)) && [[ " ${%[2]s_commands[$path]-} " == *" $w "* ]]; then
				path="$path $w"
			else
				nargs=$((nargs + 1))
			fi
			;;
		esac
	done
	if ((skip)) || [[ $cur == -*=* && nargs -eq 0 ]]; then
		# A flag's value: file names are the best guess.
		compopt -o default 2>/dev/null
		return 0
	fi
	if ((nargs == 0)) && [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W "${%[2]s_flags[$path]-}" -- "$cur")
		return 0
	fi
	if ((nargs == 0)) && [[ -n ${%[2]s_commands[$path]-} ]]; then
		mapfile -t COMPREPLY < <(compgen -W "${%[2]s_commands[$path]}" -- "$cur")
		return 0
	fi
	local kinds kind=%[7]s
	read -ra kinds <<<"${%[2]s_args[$path]-}"
	if ((nargs < ${#kinds[@]})); then
		kind=${kinds[nargs]}
	elif ((${#kinds[@]} > 0)) && [[ ${kinds[-1]} == *... ]]; then
		kind=${kinds[-1]}
	fi
	case ${kind%%...} in
	%[8]s | %[9]s)
		mapfile -t COMPREPLY < <(compgen -W "$(%[2]s_names "${words[0]}" "${kind%%...}")" -- "$cur")
		;;
	%[10]s) ;;
	*) compopt -o default 2>/dev/null ;;
	esac
	return 0
}

complete -F %[2]s %[1]s
`, name, fn, strings.Join(cmds, "\n"), strings.Join(flags, "\n"), strings.Join(valued, "\n"),
		strings.Join(args, "\n"), argFiles, argImages, argContainers, argNone)
	return b.Bytes(), nil
}

// ZshCompletion renders a zsh completion function (_thinbox) with one _arguments spec
// per command path, so flags are offered with their usage as description.
func ZshCompletion(app *cli.App) ([]byte, error) {
	root, err := tree(app)
	if err != nil {
		return nil, err
	}
	name := app.Name
	var b bytes.Buffer
	fmt.Fprintf(&b, "#compdef %s\n# zsh completion for %s(1)\n# Generated from %s's own command tree by `%s __gendocs`; do not edit.\n\n",
		name, name, name, name)
	for _, n := range root.all() {
		zshFunction(&b, name, n)
	}
	fmt.Fprintf(&b, `# Names of images or containers, asked of the same %[1]s binary; nothing when the
# caller may not read the store (it is root's).
_%[2]s_images() {
	local -a names
	names=(${(f)"$(_call_program images ${words[1]:-%[1]s} image ls 2>/dev/null | awk 'NR > 1 { print $1 }')"})
	_describe -t images image names
}

_%[2]s_containers() {
	local -a names
	names=(${(f)"$(_call_program containers ${words[1]:-%[1]s} ps -a 2>/dev/null | awk 'NR > 1 { print $1 }')"})
	_describe -t containers container names
}

if [[ $funcstack[1] == _%[2]s ]]; then
	_%[2]s "$@"
else
	compdef _%[2]s %[1]s
fi
`, name, ident(name))
	return b.Bytes(), nil
}

func zshFunction(b *bytes.Buffer, app string, n *node) {
	fn := "_" + ident(app)
	if n.path != "" {
		fn += "_" + ident(n.path)
	}
	fmt.Fprintf(b, "%s() {\n", fn)
	var specs []string
	for _, f := range n.flags {
		specs = append(specs, zshFlagSpec(f))
	}
	if len(n.subs) > 0 {
		fmt.Fprintf(b, "\tlocal curcontext=$curcontext state state_descr line ret=1\n\ttypeset -A opt_args\n")
		specs = append(specs, `': :->command'`, `'*:: :->argument'`)
		fmt.Fprintf(b, "\t_arguments -C -s -S -A '-*' \\\n\t\t%s && ret=0\n", strings.Join(specs, " \\\n\t\t"))
		fmt.Fprintf(b, "\tcase $state in\n\tcommand)\n\t\tlocal -a cmds=(\n")
		for _, s := range n.subs {
			for _, nm := range s.names {
				fmt.Fprintf(b, "\t\t\t%s\n", zshQuote(strings.ReplaceAll(nm, ":", `\:`)+":"+s.usage))
			}
		}
		fmt.Fprintf(b, "\t\t)\n\t\t_describe -t commands %s cmds && ret=0\n\t\t;;\n", zshQuote(strings.TrimSpace(app+" "+n.path)+" command"))
		fmt.Fprintf(b, "\targument)\n\t\tcurcontext=${curcontext%%:*:*}:%s-$words[1]:\n\t\tcase $words[1] in\n", ident(strings.TrimSpace(app+" "+n.path)))
		for _, s := range n.subs {
			fmt.Fprintf(b, "\t\t(%s) _%s_%s && ret=0 ;;\n", strings.Join(s.names, "|"), ident(app), ident(s.path))
		}
		fmt.Fprintf(b, "\t\tesac\n\t\t;;\n\tesac\n\treturn ret\n}\n\n")
		return
	}
	for i, k := range n.args {
		rep := strings.HasSuffix(k, "...")
		k = strings.TrimSuffix(k, "...")
		pos := fmt.Sprint(i + 1)
		if rep {
			pos = "*"
		}
		specs = append(specs, zshQuote(pos+":"+k+":"+zshAction(app, k)))
	}
	if len(n.args) == 0 || !strings.HasSuffix(n.args[len(n.args)-1], "...") {
		specs = append(specs, `'*:argument:_files'`)
	}
	fmt.Fprintf(b, "\t_arguments -s -S -A '-*' \\\n\t\t%s\n}\n\n", strings.Join(specs, " \\\n\t\t"))
}

func zshAction(app, kind string) string {
	switch kind {
	case argImages:
		return "_" + ident(app) + "_images"
	case argContainers:
		return "_" + ident(app) + "_containers"
	case argFiles:
		return "_files"
	}
	return " "
}

// zshFlagSpec is one _arguments spec: '(-t --tty)'{-t,--tty}'[give the command a tty]'.
func zshFlagSpec(f flagDoc) string {
	desc := "[" + zshBracket(plain(f.usage)) + "]"
	val := ""
	if f.value != "" {
		action := " "
		if f.files {
			action = "_files"
		}
		val = ":" + strings.ToLower(f.value) + ":" + action
	}
	var names []string
	for _, s := range f.short {
		if f.value != "" {
			s += "+" // -e VALUE or -eVALUE
		}
		names = append(names, s)
	}
	for _, l := range f.long {
		if f.value != "" {
			l += "=" // --env VALUE or --env=VALUE
		}
		names = append(names, l)
	}
	prefix := ""
	if f.repeat {
		prefix = "'*'"
	} else if len(names) > 1 {
		prefix = "'(" + strings.Join(f.names(), " ") + ")'"
	}
	if len(names) == 1 {
		return prefix + zshQuote(names[0]+desc+val)
	}
	return prefix + "{" + strings.Join(names, ",") + "}" + zshQuote(desc+val)
}

// zshBracket escapes text for the [description] of a spec.
func zshBracket(s string) string {
	return strings.NewReplacer(`\`, `\\`, `]`, `\]`, `[`, `\[`).Replace(s)
}

// zshQuote single-quotes a word for zsh.
func zshQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// ident turns a command path into a shell function name part: "image ls" → image_ls.
func ident(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, s)
}
