// GOT/PLT patching: every loaded ELF object's relocation slots for the allocator functions are
// pointed at our hooks, in the process, without LD_PRELOAD. dlopen is hooked so that objects
// loaded later (numpy's extension modules) are patched too; dlclose forgets unloaded slots.
#include "hooks.h"

#include <algorithm>
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <malloc.h>
#include <string>
#include <vector>

#include "tracker.h"

namespace memlens {
namespace {

// --- the hooks -------------------------------------------------------------------------------
// Each passes straight through when not tracking or when this thread is already inside the
// tracker; the real functions are reached by calling them from here, since this module's own
// relocations are never patched.

void* hook_malloc(size_t size) {
    if (!tracking() || Guard::held()) return ::malloc(size);
    Guard guard;
    void* p = ::malloc(size);
    record_alloc(guard, p, size, kMalloc);
    return p;
}

void hook_free(void* p) {
    if (!tracking() || Guard::held() || p == nullptr) return ::free(p);
    Guard guard;
    // Before the real free: once freed, another thread may get the same address.
    (void)record_free(guard, p, true);
    ::free(p);
}

void* hook_calloc(size_t count, size_t size) {
    if (!tracking() || Guard::held()) return ::calloc(count, size);
    Guard guard;
    void* p = ::calloc(count, size);
    record_alloc(guard, p, count * size, kCalloc);
    return p;
}

void* hook_realloc(void* old, size_t size) {
    if (!tracking() || Guard::held()) return ::realloc(old, size);
    Guard guard;
    // realloc = free of the old block + allocation of the new one.
    size_t old_size = record_free(guard, old, false);
    void* p = ::realloc(old, size);
    if (p == nullptr && size != 0 && old != nullptr && old_size != 0) {
        record_alloc(guard, old, old_size, kRealloc);  // failed: the old block lives on
    } else {
        record_alloc(guard, p, size, kRealloc);
    }
    return p;
}

void* hook_reallocarray(void* old, size_t count, size_t size) {
    size_t bytes = 0;
    if (__builtin_mul_overflow(count, size, &bytes)) return ::reallocarray(old, count, size);
    return hook_realloc(old, bytes);  // glibc's reallocarray calls its realloc, unhooked
}

int hook_posix_memalign(void** out, size_t alignment, size_t size) {
    if (!tracking() || Guard::held()) return ::posix_memalign(out, alignment, size);
    Guard guard;
    int result = ::posix_memalign(out, alignment, size);
    if (result == 0) record_alloc(guard, *out, size, kPosixMemalign);
    return result;
}

void* hook_aligned_alloc(size_t alignment, size_t size) {
    if (!tracking() || Guard::held()) return ::aligned_alloc(alignment, size);
    Guard guard;
    void* p = ::aligned_alloc(alignment, size);
    record_alloc(guard, p, size, kAlignedAlloc);
    return p;
}

void* hook_memalign(size_t alignment, size_t size) {
    if (!tracking() || Guard::held()) return ::memalign(alignment, size);
    Guard guard;
    void* p = ::memalign(alignment, size);
    record_alloc(guard, p, size, kMemalign);
    return p;
}

void* hook_valloc(size_t size) {
    if (!tracking() || Guard::held()) return ::valloc(size);
    Guard guard;
    void* p = ::valloc(size);
    record_alloc(guard, p, size, kValloc);
    return p;
}

void* hook_pvalloc(size_t size) {
    if (!tracking() || Guard::held()) return ::pvalloc(size);
    Guard guard;
    void* p = ::pvalloc(size);
    record_alloc(guard, p, size, kPvalloc);
    return p;
}

void* hook_mmap(void* addr, size_t length, int prot, int flags, int fd, off_t offset) {
    if (!tracking() || Guard::held()) return ::mmap(addr, length, prot, flags, fd, offset);
    Guard guard;
    void* p = ::mmap(addr, length, prot, flags, fd, offset);
    if (p != MAP_FAILED) record_mmap(guard, p, length, kMmap);
    return p;
}

void* hook_mmap64(void* addr, size_t length, int prot, int flags, int fd, off64_t offset) {
    if (!tracking() || Guard::held()) return ::mmap64(addr, length, prot, flags, fd, offset);
    Guard guard;
    void* p = ::mmap64(addr, length, prot, flags, fd, offset);
    if (p != MAP_FAILED) record_mmap(guard, p, length, kMmap);
    return p;
}

void* hook_mremap(void* old, size_t old_length, size_t length, int flags, ...) {
    void* fixed_address = nullptr;
    if (flags & MREMAP_FIXED) {
        va_list args;
        va_start(args, flags);
        fixed_address = va_arg(args, void*);
        va_end(args);
    }
    if (!tracking() || Guard::held()) {
        return ::mremap(old, old_length, length, flags, fixed_address);
    }
    Guard guard;
    // Like realloc: the old mapping goes, the new one is charged to the resizing line.
    void* p = ::mremap(old, old_length, length, flags, fixed_address);
    if (p != MAP_FAILED) {
        record_munmap(guard, old, old_length);
        record_mmap(guard, p, length, kMremap);
    }
    return p;
}

int hook_munmap(void* addr, size_t length) {
    if (!tracking() || Guard::held()) return ::munmap(addr, length);
    Guard guard;
    record_munmap(guard, addr, length);
    return ::munmap(addr, length);
}

void patch_loaded_objects(const Guard&);
void forget_unloaded_objects(const Guard&);

// The real dlopen searches a bare name along its *caller's* RPATH/RUNPATH, and its caller is
// now this module: a library that loads a plugin from beside itself would fail. So a bare name
// is looked up along the search path of the object that called the hook.
void* dlopen_for(const void* caller, const char* file, int flags) {
    if (file == nullptr || std::strchr(file, '/') != nullptr) {
        return ::dlopen(file, flags);
    }
    // Already loaded (matched by soname, wherever it came from): what dlopen would return.
    if (void* loaded = ::dlopen(file, flags | RTLD_NOLOAD)) {
        return loaded;
    }
    Dl_info info{};
    link_map* map = nullptr;
    if (dladdr1(caller, &info, reinterpret_cast<void**>(&map), RTLD_DL_LINKMAP) == 0 ||
        map == nullptr) {
        return ::dlopen(file, flags);
    }
    Guard guard;  // the search-path buffer is ours, not the program's
    Dl_serinfo size{};
    if (dlinfo(map, RTLD_DI_SERINFOSIZE, &size) != 0) {
        return ::dlopen(file, flags);
    }
    std::vector<char> buffer(size.dls_size);
    auto* paths = reinterpret_cast<Dl_serinfo*>(buffer.data());
    paths->dls_size = size.dls_size;
    paths->dls_cnt = size.dls_cnt;
    if (dlinfo(map, RTLD_DI_SERINFO, paths) == 0) {
        for (unsigned i = 0; i < paths->dls_cnt; ++i) {
            std::string candidate = std::string(paths->dls_serpath[i].dls_name) + "/" + file;
            if (access(candidate.c_str(), F_OK) == 0) {
                if (void* handle = ::dlopen(candidate.c_str(), flags)) {
                    return handle;  // else (wrong architecture...) keep looking, as ld.so does
                }
            }
        }
    }
    return ::dlopen(file, flags);
}

void* hook_dlopen(const char* file, int flags) {
    // Not guarded around the real dlopen: the library's constructors allocate for the program.
    void* handle = dlopen_for(__builtin_return_address(0), file, flags);
    if (handle != nullptr && tracking()) {
        Guard guard;
        patch_loaded_objects(guard);
    }
    return handle;
}

int hook_dlclose(void* handle) {
    int result = ::dlclose(handle);
    Guard guard;
    forget_unloaded_objects(guard);
    return result;
}

// Thread names as the OS has them: allocations after a rename go under the new name at once
// (the sampler also notices renames it did not see: ctypes calls libc's own symbols).
int hook_prctl(int option, ...) {
    va_list args;
    va_start(args, option);
    unsigned long arg2 = va_arg(args, unsigned long);
    unsigned long arg3 = va_arg(args, unsigned long);
    unsigned long arg4 = va_arg(args, unsigned long);
    unsigned long arg5 = va_arg(args, unsigned long);
    va_end(args);
    int result = ::prctl(option, arg2, arg3, arg4, arg5);
    if (result == 0 && option == PR_SET_NAME && tracking()) {
        Guard guard;
        record_thread_rename(guard, static_cast<uint64_t>(pthread_self()));
    }
    return result;
}

int hook_pthread_setname_np(pthread_t thread, const char* name) {
    int result = ::pthread_setname_np(thread, name);
    if (result == 0 && tracking()) {
        Guard guard;
        record_thread_rename(guard, static_cast<uint64_t>(thread));
    }
    return result;
}

[[noreturn]] void hook_exit(int status) {
    {
        Guard guard;
        // os._exit(n) skips every Python and C exit handler: write the capture first.
        record_process_exit(guard, status);
    }
    ::_exit(status);
}

// os.execv/os.execve replace the process: the capture is written first (they return only on
// failure, and then tracking goes on).
int hook_execv(const char* path, char* const argv[]) {
    {
        Guard guard;
        record_exec(guard);
    }
    return ::execv(path, argv);
}

int hook_execve(const char* path, char* const argv[], char* const envp[]) {
    {
        Guard guard;
        record_exec(guard);
    }
    return ::execve(path, argv, envp);
}

int hook_fexecve(int fd, char* const argv[], char* const envp[]) {
    {
        Guard guard;
        record_exec(guard);
    }
    return ::fexecve(fd, argv, envp);
}

struct Hook {
    const char* symbol;
    void* function;
};

const Hook kHooks[] = {
    {"malloc", reinterpret_cast<void*>(hook_malloc)},
    {"free", reinterpret_cast<void*>(hook_free)},
    {"calloc", reinterpret_cast<void*>(hook_calloc)},
    {"realloc", reinterpret_cast<void*>(hook_realloc)},
    {"posix_memalign", reinterpret_cast<void*>(hook_posix_memalign)},
    {"aligned_alloc", reinterpret_cast<void*>(hook_aligned_alloc)},
    {"memalign", reinterpret_cast<void*>(hook_memalign)},
    {"valloc", reinterpret_cast<void*>(hook_valloc)},
    {"pvalloc", reinterpret_cast<void*>(hook_pvalloc)},
    {"mmap", reinterpret_cast<void*>(hook_mmap)},
    {"mmap64", reinterpret_cast<void*>(hook_mmap64)},
    {"munmap", reinterpret_cast<void*>(hook_munmap)},
    {"mremap", reinterpret_cast<void*>(hook_mremap)},
    {"reallocarray", reinterpret_cast<void*>(hook_reallocarray)},
    {"dlopen", reinterpret_cast<void*>(hook_dlopen)},
    {"dlclose", reinterpret_cast<void*>(hook_dlclose)},
    {"_exit", reinterpret_cast<void*>(hook_exit)},
    {"execv", reinterpret_cast<void*>(hook_execv)},
    {"execve", reinterpret_cast<void*>(hook_execve)},
    {"fexecve", reinterpret_cast<void*>(hook_fexecve)},
    {"prctl", reinterpret_cast<void*>(hook_prctl)},
    {"pthread_setname_np", reinterpret_cast<void*>(hook_pthread_setname_np)},
};

// --- patching --------------------------------------------------------------------------------

struct PatchedSlot {
    void** slot;
    void* original;
    void* hook;
    // The read-only pages of the object's RELRO range, page-aligned ([0, 0) if the slot is not
    // in them): opened with one mprotect pair for all of the object's slots.
    uintptr_t protected_start;
    uintptr_t protected_end;
};

struct Patcher {
    pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
    std::vector<PatchedSlot> slots;
    // Objects whose relocations were scanned since install, by (base, program headers): a
    // dlopen patches only what it loaded (rescanning every object at each of the hundreds of
    // dlopens of a big import is quadratic).
    std::vector<std::pair<uintptr_t, const void*>> scanned;
    bool installed = false;
};
Patcher& P = *new Patcher;  // never destroyed: hooks may outlive static destructors

const Hook* find_hook(const char* name) {
    for (const Hook& hook : kHooks) {
        if (name[0] == hook.symbol[0] && std::strcmp(name, hook.symbol) == 0) {
            return &hook;
        }
    }
    return nullptr;
}

bool contains_address(const dl_phdr_info* info, uintptr_t address) {
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph.p_vaddr;
        if (ph.p_type == PT_LOAD && address >= start && address < start + ph.p_memsz) {
            return true;
        }
    }
    return false;
}

bool is_skipped(const dl_phdr_info* info) {
    const char* name = info->dlpi_name ? info->dlpi_name : "";
    const char* base = std::strrchr(name, '/');
    base = base ? base + 1 : name;
    // libc and ld.so are where the real functions live; the vDSO has no relocations for us.
    if (std::strncmp(base, "libc.so", 7) == 0 || std::strncmp(base, "ld-linux", 8) == 0 ||
        std::strncmp(base, "linux-vdso", 10) == 0) {
        return true;
    }
    // Our own module calls the real functions.
    return contains_address(info, reinterpret_cast<uintptr_t>(&hook_malloc));
}

uintptr_t page_size() {
    static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    return page;
}

// Writes slots[first, last), which share their RELRO pages, newest first (a slot patched twice
// ends with its true original): their hooks, or their originals when restoring. RELRO pages were
// made read-only after relocation, so they are opened once for the batch (two syscalls per
// object, not per slot: patching runs at every start and stop, in a test session per test).
void write_slots(PatchedSlot* first, PatchedSlot* last, bool restore) {
    uintptr_t start = first->protected_start;
    uintptr_t end = first->protected_end;
    bool open = start < end &&
                mprotect(reinterpret_cast<void*>(start), end - start, PROT_READ | PROT_WRITE) == 0;
    for (PatchedSlot* slot = last; slot-- != first;) {
        auto address = reinterpret_cast<uintptr_t>(slot->slot);
        if (address >= start && address < end && !open) {
            continue;  // could not be opened: leave it as it is
        }
        *slot->slot = restore ? slot->original : slot->hook;
    }
    if (open) {
        mprotect(reinterpret_cast<void*>(start), end - start, PROT_READ);
    }
}

struct DynamicInfo {
    const ElfW(Sym) * symbols = nullptr;
    const char* strings = nullptr;
    const ElfW(Rela) * plt = nullptr;
    size_t plt_size = 0;
    const ElfW(Rela) * rela = nullptr;
    size_t rela_size = 0;
};

void patch_relocations(const dl_phdr_info* info, const DynamicInfo& dyn, const ElfW(Rela) * rela,
                       size_t bytes, uintptr_t relro_start, uintptr_t relro_end) {
    // What ld.so made read-only: whole pages only (a last partial page stays writable).
    uintptr_t protected_start = relro_start & ~(page_size() - 1);
    uintptr_t protected_end = relro_end & ~(page_size() - 1);
    if (protected_start >= protected_end) {
        protected_start = protected_end = 0;
    }
    size_t first = P.slots.size();
    for (size_t i = 0; i < bytes / sizeof(ElfW(Rela)); ++i) {
        auto type = ELF64_R_TYPE(rela[i].r_info);
        if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT) continue;
        const ElfW(Sym)& sym = dyn.symbols[ELF64_R_SYM(rela[i].r_info)];
        const Hook* hook = find_hook(dyn.strings + sym.st_name);
        if (hook == nullptr) continue;
        auto** slot = reinterpret_cast<void**>(info->dlpi_addr + rela[i].r_offset);
        if (*slot == hook->function) continue;  // patched already
        P.slots.push_back({slot, *slot, hook->function, protected_start, protected_end});
    }
    if (first < P.slots.size()) {
        write_slots(P.slots.data() + first, P.slots.data() + P.slots.size(), false);
    }
}

int patch_object(dl_phdr_info* info, size_t, void*) {
    std::pair<uintptr_t, const void*> key{info->dlpi_addr, info->dlpi_phdr};
    if (std::find(P.scanned.begin(), P.scanned.end(), key) != P.scanned.end()) return 0;
    P.scanned.push_back(key);
    if (is_skipped(info)) return 0;
    const ElfW(Dyn)* dynamic = nullptr;
    uintptr_t relro_start = 0;
    uintptr_t relro_end = 0;
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        if (ph.p_type == PT_DYNAMIC) {
            dynamic = reinterpret_cast<const ElfW(Dyn)*>(info->dlpi_addr + ph.p_vaddr);
        } else if (ph.p_type == PT_GNU_RELRO) {
            relro_start = info->dlpi_addr + ph.p_vaddr;
            relro_end = relro_start + ph.p_memsz;
        }
    }
    if (dynamic == nullptr) return 0;
    DynamicInfo dyn;
    // ld.so usually rewrites these to absolute addresses; some objects keep them relative.
    auto absolute = [info](ElfW(Addr) value) {
        return value < info->dlpi_addr ? value + info->dlpi_addr : value;
    };
    for (const ElfW(Dyn)* d = dynamic; d->d_tag != DT_NULL; ++d) {
        switch (d->d_tag) {
            case DT_SYMTAB:
                dyn.symbols = reinterpret_cast<const ElfW(Sym)*>(absolute(d->d_un.d_ptr));
                break;
            case DT_STRTAB:
                dyn.strings = reinterpret_cast<const char*>(absolute(d->d_un.d_ptr));
                break;
            case DT_JMPREL:
                dyn.plt = reinterpret_cast<const ElfW(Rela)*>(absolute(d->d_un.d_ptr));
                break;
            case DT_PLTRELSZ:
                dyn.plt_size = d->d_un.d_val;
                break;
            case DT_RELA:
                dyn.rela = reinterpret_cast<const ElfW(Rela)*>(absolute(d->d_un.d_ptr));
                break;
            case DT_RELASZ:
                dyn.rela_size = d->d_un.d_val;
                break;
            default:
                break;
        }
    }
    if (dyn.symbols == nullptr || dyn.strings == nullptr) return 0;
    if (dyn.plt) patch_relocations(info, dyn, dyn.plt, dyn.plt_size, relro_start, relro_end);
    if (dyn.rela) patch_relocations(info, dyn, dyn.rela, dyn.rela_size, relro_start, relro_end);
    return 0;
}

void patch_loaded_objects(const Guard&) {
    pthread_mutex_lock(&P.mutex);
    if (P.installed) {
        dl_iterate_phdr(patch_object, nullptr);
    }
    pthread_mutex_unlock(&P.mutex);
}

int find_slot_owner(dl_phdr_info* info, size_t, void* data) {
    auto* slot = static_cast<PatchedSlot*>(data);
    return contains_address(info, reinterpret_cast<uintptr_t>(slot->slot)) ? 1 : 0;
}

void forget_unloaded_objects(const Guard&) {
    pthread_mutex_lock(&P.mutex);
    std::vector<PatchedSlot> kept;
    kept.reserve(P.slots.size());
    for (PatchedSlot& slot : P.slots) {
        if (dl_iterate_phdr(find_slot_owner, &slot) == 1) kept.push_back(slot);
    }
    P.slots.swap(kept);
    // An object loaded later at the same address must be scanned.
    std::vector<std::pair<uintptr_t, const void*>> loaded;
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* data) {
            static_cast<std::vector<std::pair<uintptr_t, const void*>>*>(data)->emplace_back(
                info->dlpi_addr, info->dlpi_phdr);
            return 0;
        },
        &loaded);
    std::vector<std::pair<uintptr_t, const void*>> still;
    for (const auto& key : P.scanned) {
        if (std::find(loaded.begin(), loaded.end(), key) != loaded.end()) still.push_back(key);
    }
    P.scanned.swap(still);
    pthread_mutex_unlock(&P.mutex);
}

void lock_patcher() { pthread_mutex_lock(&P.mutex); }
void unlock_patcher() { pthread_mutex_unlock(&P.mutex); }
// A child forked while another thread was patching (a dlopen) must not inherit the lock held.
void reset_patcher() { pthread_mutex_init(&P.mutex, nullptr); }
pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;
void register_atfork() { pthread_atfork(lock_patcher, unlock_patcher, reset_patcher); }

}  // namespace

void install_hooks(const Guard& guard) {
    pthread_once(&g_atfork_once, register_atfork);
    pthread_mutex_lock(&P.mutex);
    P.installed = true;
    pthread_mutex_unlock(&P.mutex);
    patch_loaded_objects(guard);
}

void uninstall_hooks(const Guard&) {
    pthread_mutex_lock(&P.mutex);
    P.installed = false;
    P.scanned.clear();
    // Newest first, a batch per run of slots that share their RELRO pages (one object's).
    for (size_t end = P.slots.size(); end > 0;) {
        size_t begin = end - 1;
        const PatchedSlot& last = P.slots[end - 1];
        while (begin > 0 && last.protected_end != 0 &&
               P.slots[begin - 1].protected_start == last.protected_start &&
               P.slots[begin - 1].protected_end == last.protected_end) {
            --begin;
        }
        write_slots(P.slots.data() + begin, P.slots.data() + end, true);
        end = begin;
    }
    P.slots.clear();
    pthread_mutex_unlock(&P.mutex);
}

}  // namespace memlens
