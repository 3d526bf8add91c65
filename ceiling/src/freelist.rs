//! The per-thread, per-class LIFO of freed blocks: intrusive (the link lives in the freed block) or,
//! with feature `outline`, a stack of pointers in a separate per-thread span, so neither malloc nor
//! free ever writes to a block and a block the program never touches never costs a page fault.
use crate::classes::CLASSES;
use core::ffi::c_void;
use core::ptr::null_mut;

#[cfg(not(feature = "outline"))]
pub struct FreeLists {
    heads: [*mut FreeBlock; CLASSES],
}

#[cfg(not(feature = "outline"))]
struct FreeBlock {
    next: *mut FreeBlock,
}

#[cfg(not(feature = "outline"))]
impl FreeLists {
    pub const EMPTY: FreeLists = FreeLists {
        heads: [null_mut(); CLASSES],
    };
    /// Bytes of stack area each class needs (none: the links live in the blocks).
    pub const STACK_BYTES_PER_CLASS: usize = 0;

    /// The most recently freed block of `class`, or null. `class < CLASSES`.
    #[inline(always)]
    pub fn pop(&mut self, class: usize) -> *mut c_void {
        // SAFETY: class < CLASSES (caller); a listed block is ours, its link written by push.
        unsafe {
            let head = self.heads.get_unchecked_mut(class);
            let block = *head;
            if !block.is_null() {
                *head = (*block).next;
            }
            block as *mut c_void
        }
    }

    /// Lists `p`; never needs the stack area, so always true.
    #[inline(always)]
    pub fn push(&mut self, class: usize, p: *mut c_void) -> bool {
        // SAFETY: class < CLASSES (caller); p is a freed block of >= 16 bytes, ours from now on.
        unsafe {
            let head = self.heads.get_unchecked_mut(class);
            let block = p as *mut FreeBlock;
            (*block).next = *head;
            *head = block;
        }
        true
    }

    pub fn needs_stack(&self) -> bool {
        false
    }

    pub fn set_stack_area(&mut self, _start: usize) {}
}

#[cfg(feature = "outline")]
pub struct FreeLists {
    /// Next free stack slot per class (null until the thread's stack area is set).
    top: [*mut *mut c_void; CLASSES],
    bottom: [*mut *mut c_void; CLASSES],
    limit: [*mut *mut c_void; CLASSES],
}

#[cfg(feature = "outline")]
impl FreeLists {
    pub const EMPTY: FreeLists = FreeLists {
        top: [null_mut(); CLASSES],
        bottom: [null_mut(); CLASSES],
        limit: [null_mut(); CLASSES],
    };
    /// 16 MiB of pointers (2 Mi blocks) per class.
    pub const STACK_BYTES_PER_CLASS: usize = 16 << 20;

    #[inline(always)]
    pub fn pop(&mut self, class: usize) -> *mut c_void {
        // SAFETY: class < CLASSES (caller); bottom..top holds pointers pushed by this thread.
        unsafe {
            let top = self.top.get_unchecked_mut(class);
            if *top == *self.bottom.get_unchecked(class) {
                return null_mut();
            }
            *top = top.sub(1);
            **top
        }
    }

    /// Stacks `p`; false when the stack area is not set yet or the class's stack is full.
    #[inline(always)]
    pub fn push(&mut self, class: usize, p: *mut c_void) -> bool {
        // SAFETY: class < CLASSES (caller); top < limit is inside this thread's stack area.
        unsafe {
            let top = self.top.get_unchecked_mut(class);
            if *top == *self.limit.get_unchecked(class) {
                return false;
            }
            top.write(p);
            *top = top.add(1);
        }
        true
    }

    pub fn needs_stack(&self) -> bool {
        self.limit[0].is_null()
    }

    /// Gives the lists their area: `CLASSES * STACK_BYTES_PER_CLASS` bytes at `start`, unused.
    pub fn set_stack_area(&mut self, start: usize) {
        for class in 0..CLASSES {
            let bottom = (start + class * Self::STACK_BYTES_PER_CLASS) as *mut *mut c_void;
            self.bottom[class] = bottom;
            self.top[class] = bottom;
            self.limit[class] =
                (start + (class + 1) * Self::STACK_BYTES_PER_CLASS) as *mut *mut c_void;
        }
    }
}
