-- AlterTable
ALTER TABLE "documents" ADD COLUMN     "is_verification_document" BOOLEAN NOT NULL DEFAULT false;
