// An arm64 Linux Image header for the guest, so the same guest can be loaded
// as kind=image (guest/linker-image.ld puts this first). The hypervisor loads
// an Image at a 2 MiB-aligned address 2 MiB above RAM base, plus text_offset.
    .section .text.imagehdr, "ax"
    b       _start                   // code0
    .long   0                        // code1
    .quad   0                        // text_offset
    .quad   __image_size             // image_size, from guest/linker-image.ld
    .quad   0x2                      // flags: little-endian, 4 KiB pages
    .quad   0, 0, 0
    .ascii  "ARM\x64"
    .long   0
