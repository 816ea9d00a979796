"""Chapter 3's answer key and the wrong answers its graders must reject (see course/grading.py)."""

from ch03 import attention, block_manager, model_runner

REFERENCE = {
    "allocate": block_manager.BlockManager.allocate,
    "may_append": block_manager.BlockManager.may_append,
    "deallocate": block_manager.BlockManager.deallocate,
    "compute_slot_mapping": model_runner.compute_slot_mapping,
    "gather_kv": attention.gather_kv,
}


# --- 3.1 allocate -------------------------------------------------------------------------------
def allocate_rounds_down(self, seq):
    # 17 tokens in blocks of 16 get one block: the 17th token has nowhere to go
    for _ in range(seq.num_tokens // self.block_size):
        seq.block_table.append(self._take_free_block())


def allocate_one_block_too_many(self, seq):
    # a prompt that fills its blocks exactly gets a spare one it does not need
    for _ in range(seq.num_tokens // self.block_size + 1):
        seq.block_table.append(self._take_free_block())


def allocate_without_taking_blocks_off_the_free_list(self, seq):
    # the block ids are read, not taken: the next sequence gets the same blocks
    n = (seq.num_tokens + self.block_size - 1) // self.block_size
    seq.block_table.extend(list(self.free_block_ids)[:n])


def allocate_around_take_free_block(self, seq):
    # pops the free list by hand: the blocks are taken, but never recorded in used_block_ids
    for _ in range((seq.num_tokens + self.block_size - 1) // self.block_size):
        seq.block_table.append(self.free_block_ids.popleft())


# --- 3.2 may_append -----------------------------------------------------------------------------
def may_append_when_the_last_block_is_full(self, seq):
    # off by one at the boundary: a new block as soon as the last one is exactly full
    if len(seq.block_table) * self.block_size <= seq.num_tokens:
        seq.block_table.append(self._take_free_block())


def may_append_only_after_the_boundary(self, seq):
    # off by one the other way: the first token of a new block is written past the table's end
    if len(seq.block_table) * self.block_size < seq.num_tokens - 1:
        seq.block_table.append(self._take_free_block())


def may_append_every_step(self, seq):
    seq.block_table.append(self._take_free_block())


def may_append_by_remainder(self, seq):
    # "the newest token is the first of a block" as num_tokens % block_size == 1: right for blocks of
    # 2 or more, but with blocks of one token the remainder is always 0 and no block is ever added
    if seq.num_tokens % self.block_size == 1:
        seq.block_table.append(self._take_free_block())


# --- 3.3 deallocate -----------------------------------------------------------------------------
def deallocate_forgets_to_free(self, seq):
    # the sequence lets go of its blocks, but the pool never gets them back: a leak
    seq.block_table = []
    seq.num_cached_tokens = 0


def deallocate_keeps_the_table(self, seq):
    for block_id in reversed(seq.block_table):
        self.used_block_ids.remove(block_id)
        self.free_block_ids.append(block_id)
    seq.num_cached_tokens = 0


def deallocate_forgets_used_block_ids(self, seq):
    self.free_block_ids.extend(seq.block_table)
    seq.block_table = []
    seq.num_cached_tokens = 0


# --- 3.4 slot_mapping ---------------------------------------------------------------------------
def slot_mapping_adds_block_id_and_offset(block_table, start, end, block_size):
    # forgets to scale the block id by the block size: blocks overlap
    return [block_table[p // block_size] + p % block_size for p in range(start, end)]


def slot_mapping_ignores_the_block_table(block_table, start, end, block_size):
    # as if the sequence's blocks were pool blocks 0, 1, 2...: chapter 2's contiguous row again
    return list(range(start, end))


def slot_mapping_offset_from_the_table_index(block_table, start, end, block_size):
    return [block_table[p // block_size] * block_size + p // block_size for p in range(start, end)]


# --- 3.5 gather through the block table ----------------------------------------------------------
def gather_in_pool_order(cache, block_table, context_len):
    # sorts the blocks: right only while the table happens to be increasing
    block_size = cache.shape[1]
    n = (context_len + block_size - 1) // block_size
    return cache[block_table[:n].sort().values].flatten(0, 1)[:context_len]


def gather_whole_last_block(cache, block_table, context_len):
    # keeps the unfilled slots of the last block: stale K/V join the attention
    block_size = cache.shape[1]
    n = (context_len + block_size - 1) // block_size
    return cache[block_table[:n]].flatten(0, 1)


def gather_wrong_flatten(cache, block_table, context_len):
    # lays out offset-major (offset 0 of every block, then offset 1...) instead of block by block
    block_size = cache.shape[1]
    n = (context_len + block_size - 1) // block_size
    return cache[block_table[:n]].transpose(0, 1).flatten(0, 1)[:context_len]


PLANTED = {
    "allocate": [allocate_rounds_down, allocate_one_block_too_many, allocate_without_taking_blocks_off_the_free_list,
                 allocate_around_take_free_block],
    "may_append": [may_append_when_the_last_block_is_full, may_append_only_after_the_boundary, may_append_every_step,
                   may_append_by_remainder],
    "deallocate": [deallocate_forgets_to_free, deallocate_keeps_the_table, deallocate_forgets_used_block_ids],
    "compute_slot_mapping": [
        slot_mapping_adds_block_id_and_offset,
        slot_mapping_ignores_the_block_table,
        slot_mapping_offset_from_the_table_index,
    ],
    "gather_kv": [gather_in_pool_order, gather_whole_last_block, gather_wrong_flatten],
}
