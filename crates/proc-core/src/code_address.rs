//! [`CodeAddress`]: a function named in a way that another process running the same
//! executable can call it.
//!
//! A function's address differs between two runs of one executable (address-space layout
//! randomisation), but its offset from the start of the executable does not. So a function
//! crosses as that offset, and the receiver adds its own load address. Before it does, it
//! checks that the result lands inside its own executable code; and the start methods check
//! that both processes run the same executable file. A function that lives outside the main
//! executable (in a shared library) cannot be named this way, and says so.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The code of the main executable as mapped in this process: its load bias and the ranges
/// of its executable segments.
struct Image {
    bias: usize,
    executable: Vec<(usize, usize)>,
}

static IMAGE: OnceLock<Option<Image>> = OnceLock::new();

fn image() -> Option<&'static Image> {
    IMAGE.get_or_init(find_image).as_ref()
}

/// Finds the image now: called by the process's constructor, before `main` and so before
/// any thread. Found lazily instead, it could be half found by one thread while another
/// forks, and the child would wait forever for the search that its copy of the lock says
/// is under way.
pub(crate) fn find_before_threads() {
    image();
}

/// An address inside this crate's code, hence inside the object that holds it.
pub(crate) fn anchor() -> usize {
    anchor as fn() -> usize as usize
}

fn find_image() -> Option<Image> {
    struct Search {
        anchor: usize,
        found: Option<Image>,
    }
    unsafe extern "C" fn visit(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: dl_iterate_phdr passes a valid info for the duration of the call, and
        // `data` is the &mut Search handed to it below.
        let (info, search) = unsafe { (&*info, &mut *(data as *mut Search)) };
        let bias = info.dlpi_addr as usize;
        let mut executable = Vec::new();
        for i in 0..info.dlpi_phnum as usize {
            // SAFETY: dlpi_phdr points to dlpi_phnum program headers.
            let header = unsafe { &*info.dlpi_phdr.add(i) };
            if header.p_type == libc::PT_LOAD && header.p_flags & libc::PF_X != 0 {
                let start = bias.wrapping_add(header.p_vaddr as usize);
                executable.push((start, start.wrapping_add(header.p_memsz as usize)));
            }
        }
        if executable
            .iter()
            .any(|&(start, end)| (start..end).contains(&search.anchor))
        {
            search.found = Some(Image { bias, executable });
            return 1;
        }
        0
    }
    let mut search = Search {
        anchor: anchor(),
        found: None,
    };
    // SAFETY: visit matches the callback type and only reads what it is given; `search`
    // outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(visit), &mut search as *mut Search as *mut libc::c_void) };
    search.found
}

/// A function of this executable, named by its offset in the executable's image, so that a
/// process running the same executable (spawned, or started by the fork server) can call it.
///
/// The caller turns the resolved address back into a function pointer of the *right type*;
/// that is why [`resolve`](CodeAddress::resolve) is only half the job and the transmute that
/// follows it is `unsafe` at the caller.
///
/// ```
/// use proc_core::internal::CodeAddress;
///
/// fn double(x: u64) -> u64 { x * 2 }
///
/// let named = CodeAddress::of(double as fn(u64) -> u64 as usize)?;
/// let address = named.resolve()?;
/// // SAFETY: the address came from a `fn(u64) -> u64` of this very executable.
/// let f: fn(u64) -> u64 = unsafe { std::mem::transmute::<usize, fn(u64) -> u64>(address) };
/// assert_eq!(f(21), 42);
/// # Ok::<(), proc_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CodeAddress {
    offset: u64,
}

impl CodeAddress {
    /// Names the code at `address`, which must lie in the main executable's code.
    pub fn of(address: usize) -> crate::Result<Self> {
        let image = image().ok_or(crate::Error::NoImage)?;
        if !image.contains(address) {
            return Err(crate::Error::NotInExecutable { address });
        }
        Ok(CodeAddress {
            offset: address.wrapping_sub(image.bias) as u64,
        })
    }

    /// The address of the named code in this process. An error when it does not land inside
    /// this executable's code (bytes from another process are not trusted).
    pub fn resolve(&self) -> crate::Result<usize> {
        let image = image().ok_or(crate::Error::NoImage)?;
        let address = usize::try_from(self.offset)
            .ok()
            .map(|offset| image.bias.wrapping_add(offset))
            .filter(|&address| image.contains(address))
            .ok_or(crate::Error::BadCodeAddress {
                offset: self.offset,
            })?;
        Ok(address)
    }
}

impl Image {
    fn contains(&self, address: usize) -> bool {
        self.executable
            .iter()
            .any(|&(start, end)| (start..end).contains(&address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run by the next test in a process of its own, where nothing but the process's
    /// constructor ran before it (in a process shared with other tests, one of them may
    /// have found the image first, and it would prove nothing).
    #[test]
    #[ignore = "run by the_image_is_found_before_main…, in a process of its own"]
    fn probe_image_found_before_main() {
        assert!(IMAGE.get().is_some(), "the image was not found before main");
    }

    #[test]
    fn the_image_is_found_before_main_so_that_no_forked_child_waits_for_it() {
        let exe = std::env::current_exe().unwrap();
        let status = std::process::Command::new(exe)
            .args([
                "--exact",
                "code_address::tests::probe_image_found_before_main",
                "--include-ignored",
                "--quiet",
            ])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "the probe process failed: {status}");
    }

    #[test]
    fn an_offset_outside_the_code_is_refused() {
        assert!(
            CodeAddress { offset: u64::MAX }.resolve().is_err(),
            "the end of the address space is no code of ours"
        );
        let data = &0u8 as *const u8 as usize;
        assert!(CodeAddress::of(data).is_err(), "a stack address is no code");
    }

    #[test]
    fn functions_round_trip() {
        fn three() -> u32 {
            3
        }
        let named = CodeAddress::of(three as fn() -> u32 as usize).unwrap();
        let bytes = crate::codec::encode(&named).unwrap();
        let back: CodeAddress = crate::codec::decode(&bytes, 64).unwrap();
        assert_eq!(back.resolve().unwrap(), three as fn() -> u32 as usize);
    }
}
