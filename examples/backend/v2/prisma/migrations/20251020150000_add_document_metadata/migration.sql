-- AlterTable
ALTER TABLE "documents" ADD COLUMN     "mime_type" TEXT,
ADD COLUMN     "size_bytes" BIGINT,
ADD COLUMN     "checksum" TEXT;
